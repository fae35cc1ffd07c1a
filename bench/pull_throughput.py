"""Benchmark: pulling EHR-side changes from the sandbox, ours against plain paging (the ceiling).

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/pull_throughput.py [--changes 20000] [--patients 20]
[--rounds 3] [--page-size 100]`.

Setup (not timed): --patients typical encounters are accepted into a SQLite store and
pushed to the sandbox under a namespace of their own; then --changes Observations about
those patients are created directly on the sandbox, as EHR users would (transaction Bundles
of 500). The store is copied aside at that point, so every round starts from it.

Each round, interleaved so both meet the sandbox in the same state:
  ceiling  - a plain `requests` client issues exactly the searches our pull issues (the
             same channels, patients chunked the same way, `_sort`, `_count`, no-cache)
             and follows every `next` link, parsing each page as JSON: what any client
             must do to read the same data, and nothing more
  ours     - `Puller.pull()` on a fresh copy of the store: the same pages, plus merging
             every version into the store (import, reference rewriting, search index,
             Provenance; a transaction per page, or per the pages already fetched
             when the EHR is ahead). Deletion reading (`_history`) is off
             for the comparison (the ceiling reads no history); one more round with it on
             is reported apart.
Rates are versions read per second (every entry of every page, ours and the EHR's).
Memory: the Python heap (tracemalloc) sampled after every commit of one more pull, its
growth from the first 10 % of commits (a commit takes the pages already fetched) to the end,
and the peak.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.ehr.client import FRESH, FhirClient  # noqa: E402
from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.sync.pull.puller import Puller, PullOptions, PullSummary  # noqa: E402
from adapter.sync.pull.scope import channels  # noqa: E402
from adapter.sync.push.worker import PushWorker  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from tests.integration.support import ehr_heart_rates, encounters  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def setup(base: str, folder: Path, patients: int, changes: int) -> tuple[Path, MappingContext]:
    tag = uuid.uuid4().hex[:10]
    ctx = MappingContext(namespace=f"https://fhir.pullbench-{tag}.example", tenant=f"bench-{tag}")
    db = folder / "pushed.db"
    engine = create_store_engine(f"sqlite:///{db}")
    upgrade(engine)
    for sub in encounters(patients):
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)
    PushWorker(engine, FhirClient(base), owner="bench", concurrency=4).drain()
    (patients_by_id,) = [c for c in channels(engine, ctx.tenant) if c.name == "Patient"]
    engine.dispose()
    ids = [ehr_id for _, ehr_id in patients_by_id.subjects]
    started = time.perf_counter()
    ehr_heart_rates(base, ids, changes, batch=500)
    print(
        f"setup: {changes} Observations created on the sandbox "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return db, ctx


def ceiling(base: str, db: Path, ctx: MappingContext, page_size: int) -> tuple[int, float]:
    """Versions read and seconds taken by plain paging through our pull's searches."""
    engine = create_store_engine(f"sqlite:///{db}")
    plan = channels(engine, ctx.tenant)
    engine.dispose()
    session = requests.Session()
    session.headers.update({"Accept": "application/fhir+json", **FRESH})
    read = 0
    started = time.perf_counter()
    for channel in plan:
        subjects = [value for _, value in channel.subjects]
        for start in range(0, len(subjects), 50):
            params: list[tuple[str, str]] | None = [
                (channel.param, ",".join(subjects[start : start + 50])),
                ("_sort", "_lastUpdated"),
                ("_count", str(page_size)),
            ]
            url: str | None = f"{base}/{channel.resource_type}"
            while url is not None:
                page = session.get(url, params=params, timeout=120).json()
                params = None
                read += len(page.get("entry", []))
                url = next(
                    (k["url"] for k in page.get("link", []) if k.get("relation") == "next"), None
                )
    return read, time.perf_counter() - started


def ours(
    base: str, db: Path, folder: Path, ctx: MappingContext, page_size: int, deletions: bool
) -> tuple[PullSummary, float]:
    copy = folder / f"round-{uuid.uuid4().hex[:6]}.db"
    shutil.copy(db, copy)
    engine = create_store_engine(f"sqlite:///{copy}")
    options = PullOptions(page_size=page_size, deletions=deletions)
    with FhirClient(base) as client:
        puller = Puller(engine, client, owner="bench", options=options)
        started = time.perf_counter()
        summary = puller.pull(ctx.tenant)
        took = time.perf_counter() - started
    engine.dispose()
    copy.unlink()
    assert not summary.failed, summary.failed
    return summary, took


def memory(base: str, db: Path, folder: Path, ctx: MappingContext, page_size: int) -> None:
    copy = folder / "memory.db"
    shutil.copy(db, copy)
    engine = create_store_engine(f"sqlite:///{copy}")
    samples: list[int] = []
    tracemalloc.start()
    with FhirClient(base) as client:
        options = PullOptions(page_size=page_size, deletions=False)
        progress = lambda _: samples.append(tracemalloc.get_traced_memory()[0])  # noqa: E731
        Puller(engine, client, owner="bench", options=options, progress=progress).pull(ctx.tenant)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    engine.dispose()
    early = max(samples[: max(1, len(samples) // 10)])
    mib = 1024 * 1024
    print(
        f"memory: Python heap after the first 10 % of {len(samples)} commits "
        f"{early / mib:.1f} MiB, at the end {samples[-1] / mib:.1f} MiB, peak {peak / mib:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--base", default="http://127.0.0.1:8090/fhir")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, ctx = setup(base, folder, args.patients, args.changes)
        ceilings, mine = [], []
        for round_number in range(1, args.rounds + 1):
            read, took = ceiling(base, db, ctx, args.page_size)
            ceilings.append(read / took)
            summary, seconds = ours(base, db, folder, ctx, args.page_size, deletions=False)
            mine.append(summary.received / seconds)
            print(
                f"round {round_number}: ceiling {read} versions in {took:.2f} s "
                f"({read / took:,.0f}/s); ours {summary.received} in {seconds:.2f} s "
                f"({summary.received / seconds:,.0f}/s, {summary.pages} pages; {summary.line()})"
            )
        summary, seconds = ours(base, db, folder, ctx, args.page_size, deletions=True)
        print(
            f"with deletions read from _history: {summary.received} versions in {seconds:.2f} s "
            f"({summary.pages} pages)"
        )
        memory(base, db, folder, ctx, args.page_size)
    top, best = statistics.median(ceilings), statistics.median(mine)
    print(
        f"median of {args.rounds}: ceiling {top:,.0f} versions/s, ours {best:,.0f} versions/s, "
        f"ours / ceiling = {best / top:.0%}"
    )


if __name__ == "__main__":
    main()
