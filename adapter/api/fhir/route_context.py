"""What every `/fhir` data route needs, as ONE dependency (the reader, store, clock,
signer, read threads), and where its store work runs: `read_by_key` for a row or a few by
key, `off_loop` for a search, a history or `$everything`.

FastAPI solves each dependency of a route on its own (a `solve_dependencies` pass with its
bookkeeping, per dependency per request); with five of them that was about a third of the
app's CPU for a read by id. `reading` awaits the same checks itself, in the same order as
the separate dependencies ran: the caller's credential and scope (401/403), then the
store's readiness (503).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, FastAPI, Request

from adapter.api.auth.callers import Caller
from adapter.api.deps import Clock, app_clock, app_engine, migrated_store
from adapter.api.fhir.bundle import paging_tokens
from adapter.api.fhir.common import fhir_reader
from adapter.api.fhir.limits import SearchLimits
from adapter.api.fhir.paging import PagingTokens
from adapter.store.engine import Engine, is_sqlite_file


@dataclass(frozen=True)
class Reading:
    """The authenticated reader, the store, the clock, the paging token signer, the
    process's read threads, what one search may ask (adapter.api.fhir.limits), and the
    thread heavy searches take turns on."""

    caller: Caller
    engine: Engine
    clock: Clock
    tokens: PagingTokens
    threads: CapacityLimiter
    limits: SearchLimits
    heavy_threads: CapacityLimiter


async def reading(request: Request) -> Reading:
    caller = await fhir_reader(request)
    await migrated_store(request)
    engine = await app_engine(request)
    clock, tokens = await app_clock(request), await paging_tokens(request)
    threads, limits = read_threads(request.app), search_limits(request.app)
    return Reading(caller, engine, clock, tokens, threads, limits, heavy_threads(request.app))


def heavy_threads(app: FastAPI) -> CapacityLimiter:
    """The process's one thread for heavy searches (adapter.api.fhir.limits.is_heavy): they
    run one at a time, beside the read threads, so a loop of big pages never takes the
    threads the ordinary searches wait for."""
    limiter: CapacityLimiter | None = getattr(app.state, "heavy_threads", None)
    if limiter is None:
        limiter = app.state.heavy_threads = CapacityLimiter(1)
    return limiter


def search_limits(app: FastAPI) -> SearchLimits:
    """The process's `SearchLimits`, read from its settings once."""
    limits: SearchLimits | None = getattr(app.state, "search_limits", None)
    if limits is None:
        limits = app.state.search_limits = SearchLimits.of(app.state.settings)
    return limits


def read_threads(app: FastAPI) -> CapacityLimiter:
    """The process's limiter of `/fhir` store work: `ADAPTER_READ_THREADS` at a time."""
    limiter: CapacityLimiter | None = getattr(app.state, "read_threads", None)
    if limiter is None:
        limiter = app.state.read_threads = CapacityLimiter(app.state.settings.read_threads)
    return limiter


ReadingDep = Annotated[Reading, Depends(reading)]

Result = TypeVar("Result")


async def off_loop(work: Callable[[], Result], threads: CapacityLimiter) -> Result:
    """Run `work` (a search, a history, `$everything`) on one of a few read threads.

    Not on the thread pool FastAPI gives a sync route (anyio's 40 threads): there, 16
    searches at once ran in 16 threads taking the GIL from each other and from the event
    loop by turns, and a search's p99 was four times its median (74 against 16 ms at 32
    connections, two web processes). With 1, 2 or 4 threads per process the p99 was 26,
    28 and 32 ms at the same throughput (see docs/benchmarks.md). The rest wait their turn
    in order, on the loop.
    """
    return await anyio.to_thread.run_sync(work, limiter=threads)


async def read_by_key(
    engine: Engine, lookup: Callable[[], Result], threads: CapacityLimiter
) -> Result:
    """Run `lookup`, a read of a row or a few by key, where it costs least.

    On a SQLite file it runs right here, on the event loop: such a read takes tens of
    microseconds and never waits for a writer (WAL), while the thread-pool hop of a sync
    route cost more than the read itself and queued reads behind each other (in process,
    a read by id used 30 % less CPU and its p99 fell from about 9 ms to 1 ms); the pool has
    more connections than the thread pool has threads (`adapter.store.engine`), so the loop
    never waits for one. On any other
    store (a server's round trip must not hold the loop, and an in-memory SQLite database
    lives in one thread's connection) it runs on the read threads (`off_loop`).
    """
    if is_sqlite_file(engine):
        return lookup()
    return await off_loop(lookup, threads)
