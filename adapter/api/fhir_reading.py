"""What every `/fhir` data route needs, as ONE dependency: the reader, store, clock, signer.

FastAPI solves each dependency of a route on its own (a `solve_dependencies` pass with its
bookkeeping, per dependency per request); with five of them that was about a third of the
app's CPU for a read by id. `reading` awaits the same checks itself, in the same order as
the separate dependencies ran: the caller's credential and scope (401/403), then the
store's readiness (503).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from adapter.api.auth import Caller
from adapter.api.deps import Clock, app_clock, app_engine, migrated_store
from adapter.api.fhir_bundle import paging_tokens
from adapter.api.fhir_common import fhir_reader
from adapter.api.fhir_paging import PagingTokens


@dataclass(frozen=True)
class Reading:
    """The authenticated reader, the store, the clock, the paging token signer."""

    caller: Caller
    engine: Engine
    clock: Clock
    tokens: PagingTokens


async def reading(request: Request) -> Reading:
    caller = await fhir_reader(request)
    await migrated_store(request)
    engine = await app_engine(request)
    return Reading(caller, engine, await app_clock(request), await paging_tokens(request))


ReadingDep = Annotated[Reading, Depends(reading)]
