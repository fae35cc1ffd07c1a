"""Benchmark: `adapter reconcile` of N pushed encounters, against reading each resource by id.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/reconcile_time.py [--encounters 100] [--rounds 3]`.

N typical encounters of N patients are accepted into a SQLite store and pushed to the
sandbox (not timed), under a namespace of their own. Then, in rounds, each timed:
  reconcile c=1  - `adapter reconcile --json` in this process, one patient at a time
  reconcile c=4  - the same with ADAPTER_WORKER_CONCURRENCY=4 (the default): four
                   patients' searches with the EHR at once
  by id          - the baseline a basic script would be: GET every pushed resource by its
                   EHR id, one after the other on one kept-alive connection (it finds
                   changed and missing resources, but never what the EHR added)
Every reconcile must report no difference, or the run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import requests
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.cli import main  # noqa: E402
from adapter.ehr.client import FhirClient  # noqa: E402
from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.schema import resources  # noqa: E402
from adapter.sync.push.worker import PushWorker  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from tests.integration.support import encounters  # noqa: E402

FHIR_JSON = {"Accept": "application/fhir+json"}


def prepare(database: str, base: str, count: int) -> tuple[MappingContext, list[str]]:
    """N encounters stored and pushed; the EHR references of every resource."""
    ctx = MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")
    engine = create_store_engine(database)
    upgrade(engine)
    for sub in encounters(count):
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)
    with FhirClient(base) as client:
        summary = PushWorker(engine, client, owner="bench", concurrency=4).drain()
    assert summary.done == count, summary
    with engine.connect() as conn:
        rows = conn.execute(select(resources.c.resource_type, resources.c.ehr_id)).all()
    engine.dispose()
    return ctx, [f"{kind}/{ehr_id}" for kind, ehr_id in rows]


def time_reconcile(concurrency: int) -> tuple[float, dict[str, int]]:
    os.environ["ADAPTER_WORKER_CONCURRENCY"] = str(concurrency)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["reconcile", "--json"])
    elapsed = time.perf_counter() - started
    summary: dict[str, int] = orjson.loads(out.getvalue())["summary"]
    assert status == 0, summary
    assert summary["differences"] == 0, summary
    return elapsed, summary


def time_by_id(base: str, references: list[str]) -> float:
    with requests.Session() as session:
        started = time.perf_counter()
        for reference in references:
            session.get(f"{base}/{reference}", headers=FHIR_JSON, timeout=30).raise_for_status()
        return time.perf_counter() - started


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encounters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{Path(folder) / 'bench.db'}"
        ctx, references = prepare(database, base, args.encounters)
        os.environ.update(
            ADAPTER_DATABASE_URL=database,
            ADAPTER_EHR_BASE_URL=base,
            ADAPTER_NAMESPACE=ctx.namespace,
            ADAPTER_LOG_LEVEL="WARNING",
        )
        times: dict[str, list[float]] = {"reconcile c=1": [], "reconcile c=4": [], "by id": []}
        summary: dict[str, int] = {}
        for _ in range(args.rounds):
            elapsed, summary = time_reconcile(1)
            times["reconcile c=1"].append(elapsed)
            elapsed, summary = time_reconcile(4)
            times["reconcile c=4"].append(elapsed)
            times["by id"].append(time_by_id(base, references))
    print(
        f"{args.encounters} encounters, {summary['patients']} patients, "
        f"{summary['in_store']} resources compared, {summary['identical']} identical; "
        f"median of {args.rounds} rounds; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    baseline = statistics.median(times["by id"])
    for name, measured in times.items():
        median = statistics.median(measured)
        print(
            f"  {name:14} {median:6.2f} s  {summary['in_store'] / median:7.0f} resources/s  "
            f"{baseline / median:5.2f}x the by-id baseline"
        )


if __name__ == "__main__":
    main_bench()
