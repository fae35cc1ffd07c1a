"""Benchmark: what the service adds to a `/fhir` read or search, over the store query alone.

Run alone: `.venv/bin/python bench/read_path.py [--encounters 300] [--requests 2000]
[--concurrency 4] [--rounds 3] [--store FILE]` (`--store`: fill FILE once and reuse it in
later runs, e.g. to compare two versions of the code on the same data).

The load of `bench/read_throughput.py` without the sockets, the sandbox and the other
processes, so that the per-request cost of our own code shows on a busy 2-core machine:
1. N typical encounters go into a fresh SQLite store through the ingest path (the same
   fill as `bench/read_throughput.py`, with its targets: random Observation ids, and
   `Observation?patient=..&code=<PHQ-9 total>&_count=50`, one match per patient).
2. The app (`create_app`, audit trail included) is called in this process through httpx's
   ASGI transport by `--concurrency` clients; each workload runs `--requests` requests,
   and, as the baseline in the same round, the bare SQL the answer cannot do without (the
   row by its key; the page of matches through the index) runs as many times on one
   connection, as plain text statements.
A third workload, `Patient/{id}/$everything`, runs a fifth as many requests, without a
bare query. Printed per round and workload: the service's requests/s, p50 and p99 in ms, and the CPU
time this process spent per request (all its threads: the app and the in-process client),
then the bare query's CPU time per call, and the ratio of the two. CPU time rather than
wall time, because on a machine shared with other work the wall time mostly measures the
others: run the script before and after a change (`--store` keeps the data the same) and
compare the CPU figures (lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from read_throughput import (  # noqa: E402  (bench/, beside this file)
    Targets,
    first_observation_code,
    load_ours,
    our_targets,
)

from adapter.api.app import create_app  # noqa: E402
from adapter.config import Settings  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from tests.integration.support import encounters  # noqa: E402

KEY = "bench-" + uuid.uuid4().hex
TENANT = "default"
READ_SQL = text(
    "SELECT version, content, deleted, last_updated FROM resources"
    " WHERE tenant = :tenant AND resource_type = :type AND logical_id = :id"
)
SEARCH_SQL = text(
    "SELECT pk, resource_type, logical_id, version, content, last_updated FROM resources"
    " WHERE deleted = false AND pk IN (SELECT resource_pk FROM search_index WHERE tenant = :tenant"
    "  AND resource_type = 'Observation' AND param = 'patient' AND value = :patient)"
    " AND EXISTS (SELECT 1 FROM search_index WHERE resource_pk = resources.pk"
    "  AND tenant = :tenant AND param = 'code' AND system = :system AND value = :code)"
    " ORDER BY pk LIMIT 51"
)


@dataclass(frozen=True)
class Timed:
    """Wall and CPU seconds of a run, and each request's latency (sorted)."""

    seconds: float
    cpu_seconds: float
    latencies: list[float]


async def service(
    client: httpx.AsyncClient, paths: Sequence[str], requests: int, concurrency: int
) -> Timed:
    """`requests` GETs of `paths` (cycled) by `concurrency` clients."""
    latencies: list[float] = []
    turn = iter(range(requests))

    async def client_loop() -> None:
        for n in turn:
            start = time.perf_counter()
            reply = await client.get(f"/fhir/{paths[n % len(paths)]}")
            latencies.append(time.perf_counter() - start)
            if reply.status_code != 200:
                raise SystemExit(f"{reply.status_code} for a benchmark request")

    start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_start
    return Timed(time.perf_counter() - start, cpu, sorted(latencies))


def bare_reads(engine: Engine, paths: Sequence[str], requests: int) -> float:
    """CPU seconds for `requests` lookups of a row by its key, on one connection."""
    keys = [path.split("/") for path in paths]
    with engine.connect() as conn:
        start = time.process_time()
        for n in range(requests):
            kind, ident = keys[n % len(keys)]
            row = conn.execute(READ_SQL, {"tenant": TENANT, "type": kind, "id": ident}).first()
            if row is None:
                raise SystemExit("a benchmark id is not in the store")
        return time.process_time() - start


def bare_searches(engine: Engine, paths: Sequence[str], requests: int) -> float:
    """CPU seconds for `requests` page queries through the index, on one connection."""
    wanted = [_search_params(path) for path in paths]
    with engine.connect() as conn:
        start = time.process_time()
        for n in range(requests):
            rows = conn.execute(SEARCH_SQL, wanted[n % len(wanted)]).all()
            if len(rows) != 1:
                raise SystemExit(f"the bare search found {len(rows)} rows, not 1")
        return time.process_time() - start


def _search_params(path: str) -> dict[str, str]:
    query = dict(part.split("=", 1) for part in path.partition("?")[2].split("&"))
    system, _, code = query["code"].partition("|")
    return {"tenant": TENANT, "patient": query["patient"], "system": system, "code": code}


def report(name: str, requests: int, timed: Timed, bare: float | None) -> None:
    latencies = timed.latencies
    per_request = timed.cpu_seconds / requests
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    line = (
        f"  {name:10} {requests / timed.seconds:5.0f} req/s  "
        f"p50 {1000 * statistics.median(latencies):5.1f} ms  p99 {1000 * p99:5.1f} ms  "
        f"CPU {1000 * per_request:5.2f} ms/request"
    )
    if bare is not None:
        per_query = bare / requests
        line += (
            f" | bare query CPU {1000 * per_query:5.3f} ms | ratio {per_request / per_query:5.1f}x"
        )
    print(line, flush=True)


async def run(settings: Settings, targets: Targets, args: argparse.Namespace) -> None:
    app = create_app(settings)
    engine: Engine = app.state.engine
    async with app.router.lifespan_context(app):
        while not app.state.background.migrated.is_set():
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/fhir+json"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            await service(client, targets.reads + targets.searches, 200, args.concurrency)
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}:")
                for name, paths, bare in (
                    ("read by id", targets.reads, bare_reads),
                    ("search", targets.searches, bare_searches),
                ):
                    timed = await service(client, paths, args.requests, args.concurrency)
                    report(name, args.requests, timed, bare(engine, paths, args.requests))
                # No bare query for `$everything` (several, chasing references): CPU only.
                fewer = max(1, args.requests // 5)
                timed = await service(client, targets.everything, fewer, args.concurrency)
                report("everything", fewer, timed, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", type=Path, help="SQLite file: filled once, then reused")
    args = parser.parse_args()
    ctx = MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")
    subs = list(encounters(args.encounters))
    code = first_observation_code(subs, ctx)
    with tempfile.TemporaryDirectory() as folder:
        db = args.store or Path(folder) / "store.db"
        if db.exists():
            print(f"reusing the store in {db}")
        else:
            seconds = load_ours(db, subs, ctx)
            print(f"loaded {len(subs)} encounters into the store in {seconds:.1f} s")
        targets = our_targets(db, code, random.Random(20261125))
        keys = Path(folder) / "keys.json"
        keys.write_text(json.dumps([{"key": KEY, "tenant": TENANT, "scopes": ["system/*.rs"]}]))
        settings = Settings(
            database_url=f"sqlite:///{db}",
            ehr_base_url="",
            run_worker=False,
            api_keys_file=str(keys),
            log_level="WARNING",
        )
        print(
            f"{args.requests} requests per workload and round, {args.concurrency} "
            f"in-process clients (httpx ASGI transport), audit trail on"
        )
        asyncio.run(run(settings, targets, args))


if __name__ == "__main__":
    main()
