"""Benchmark: the pull's merge CPU per version, on recorded EHR pages (no network, no HAPI).

Run alone: `.venv/bin/python bench/merge_cpu.py [--patients 20] [--changes 5000]
[--rounds 5] [--page-delay-ms 0] [--profile] [--recording DIR] [--record]`.

Recording (once; needs the sandbox, `--base`): the setup of `bench/pull_throughput.py`
(--patients encounters ingested into a SQLite store and pushed, then --changes
Observations created on the sandbox), then one real pull whose client writes every page it
hands to the puller into `DIR/pages.jsonl` beside the store as it was before the pull
(`DIR/pushed.db`). A later run reuses the recording unless told `--record`.

Each round (process CPU time, `time.process_time()`, so other load on the machine counts
only through shared caches; median of --rounds, and the fastest merge round):
  parse   - `orjson.loads` of every recorded page: what the EHR client spends anyway
  insert  - a bare DBAPI `executemany` of one content row per version into a scratch table
            of a copy of the store, one transaction per 500: the floor of any store write
  merge   - `Puller.pull()` on a fresh copy of the store, its EHR a replay of the recorded
            pages (parsed beforehand, not timed): the real puller and merge code, the same
            searches, pages and transactions; only the network is gone
With --page-delay-ms the replayed EHR waits before each page (sleeping, so no CPU), as
HAPI does on a busy machine: the puller then commits a page or two at a time, as in a real
pull. Figures are CPU ms per version (every entry of every page); of the merge's, the part
spent inside the driver's statements (SQLite's own work) is printed apart. The replayed
pulls run on a fixed clock, so the store each leaves has one digest (printed): a change to
the merge that changes what is stored shows as a new digest. `--profile` adds a cProfile
of one more merge round, its top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pull_throughput import setup  # noqa: E402  (a neighbour in bench/)

from adapter.ehr.capability import Capabilities  # noqa: E402
from adapter.ehr.client import FhirClient, Page  # noqa: E402
from adapter.ehr.http import Params  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.sync.pull.puller import Clock, PullEhr, Puller, PullOptions, PullSummary, utc_now  # noqa: E402

BATCH_ROWS = 500
# The replayed pulls' clock: the store they leave is then the same, byte for byte.
REPLAY_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# What the merge writes, each row naming its resource by (tenant, type, logical id) rather
# than by primary key: the order in which a merge's transactions insert resources (pages
# merged together as they arrive) must not change the digest, what they insert must.
_OF = "(SELECT tenant || '/' || resource_type || '/' || logical_id FROM resources r "
_OF += "WHERE r.pk = {})"
DIGESTED = {
    "resources": (
        "tenant, resource_type, logical_id, identifier_system, identifier_value, patient_key, "
        "scope_key, version, content_hash, content, deleted, last_updated, ehr_id, "
        "ehr_version, ehr_etag"
    ),
    "resource_versions": (
        f"{_OF.format('resource_pk')}, version, content, deleted, recorded_at, source, "
        "submission_id, provenance"
    ),
    "search_index": (
        f"{_OF.format('resource_pk')}, tenant, resource_type, param, system, value, date_lo, "
        "date_hi"
    ),
    "sync_state": "*",
    "pull_conflicts": (
        f"id, tenant, {_OF.format('resource_pk')}, ehr_id, ehr_version, ehr_etag, ehr_content, "
        "local_version, detected_at, state, resolution, resolved_at"
    ),
}
PageKey = tuple[str, str]


def _key(resource_type: str, params: Params) -> PageKey:
    return resource_type, orjson.dumps(sorted(dict(params).items())).decode()


class RecordingEhr:
    """A real EHR client that also writes down every search page it returns."""

    def __init__(self, client: FhirClient, out: Path) -> None:
        self.client = client
        self.base_url = client.base_url
        self.out = out.open("wb")

    def capabilities(self) -> Capabilities:
        return self.client.capabilities()

    def search_pages(self, resource_type: str, params: Params, *, max_pages: int) -> Iterator[Page]:
        for page in self.client.search_pages(resource_type, params, max_pages=max_pages):
            # Written before the puller gets it: the merge rewrites a page in place.
            line = {
                "key": _key(resource_type, params),
                "server_time": page.server_time.isoformat() if page.server_time else None,
                "bundle": page.bundle,
            }
            self.out.write(orjson.dumps(line) + b"\n")
            yield page

    def history_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]:
        raise AssertionError("the recorded pull reads no history")


@dataclass
class Recording:
    db: Path
    tenant: str
    base_url: str
    pages: list[tuple[PageKey, str | None, bytes]]
    """Each search page: its search, its server time, and its Bundle as the EHR sent it."""

    @property
    def versions(self) -> int:
        return sum(len(orjson.loads(raw).get("entry", [])) for _, _, raw in self.pages)


class ReplayEhr:
    """An EHR answering each search with the pages recorded for it, in the same order;
    `delay` seconds (sleeping, no CPU) before each page, as a slower EHR would."""

    def __init__(self, recording: Recording, delay: float = 0.0) -> None:
        self.base_url = recording.base_url
        self.delay = delay
        self.pages: dict[PageKey, list[Page]] = {}
        for key, server_time, raw in recording.pages:
            stamp = datetime.fromisoformat(server_time) if server_time else None
            self.pages.setdefault(key, []).append(Page(orjson.loads(raw), stamp))

    def capabilities(self) -> Capabilities:
        raise AssertionError("the replayed pull reads no history")

    def search_pages(self, resource_type: str, params: Params, *, max_pages: int) -> Iterator[Page]:
        for page in self.pages.pop(_key(resource_type, params)):
            time.sleep(self.delay)
            yield page

    def history_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]:
        raise AssertionError("the replayed pull reads no history")


def record(folder: Path, base: str, patients: int, changes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db, ctx = setup(base, Path(tmp), patients, changes)
        shutil.copy(db, folder / "pushed.db")
        engine = create_store_engine(f"sqlite:///{db}")
        with FhirClient(base) as client:
            ehr = RecordingEhr(client, folder / "pages.jsonl")
            summary = _pull(engine, ehr, ctx.tenant)
            ehr.out.close()
        engine.dispose()
    meta = {"tenant": ctx.tenant, "base_url": base}
    (folder / "meta.json").write_bytes(orjson.dumps(meta))
    print(f"recorded: {summary.line()}")


def load(folder: Path) -> Recording:
    meta = orjson.loads((folder / "meta.json").read_bytes())
    pages = []
    for line in (folder / "pages.jsonl").read_bytes().splitlines():
        found = orjson.loads(line)
        key = (found["key"][0], found["key"][1])
        pages.append((key, found["server_time"], orjson.dumps(found["bundle"])))
    return Recording(folder / "pushed.db", meta["tenant"], meta["base_url"], pages)


def _pull(engine: Engine, ehr: PullEhr, tenant: str, clock: Clock = utc_now) -> PullSummary:
    options = PullOptions(deletions=False)
    return Puller(engine, ehr, owner="bench", options=options, clock=clock).pull(tenant)


def store_digest(db: Path) -> str:
    """A hash of what the merge wrote (every row, in a canonical order; surrogate keys
    aside): the same recording and clock must give the same hash whatever the merge code,
    or its behaviour changed."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(db)
    for table, columns in DIGESTED.items():
        rows = sorted(map(repr, conn.execute(f"SELECT {columns} FROM {table}")))
        digest.update(repr((table, rows)).encode())
    conn.close()
    return digest.hexdigest()


def _fresh_store(recording: Recording, folder: Path) -> Path:
    copy = folder / "round.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copy(recording.db, copy)
    return copy


def parse_round(recording: Recording) -> float:
    started = time.process_time()
    for _, _, raw in recording.pages:
        orjson.loads(raw)
    return time.process_time() - started


def insert_round(recording: Recording, folder: Path) -> float:
    rows = [
        (n, orjson.dumps(entry["resource"]).decode())
        for n, entry in enumerate(
            e for _, _, raw in recording.pages for e in orjson.loads(raw).get("entry", [])
        )
    ]
    conn = sqlite3.connect(_fresh_store(recording, folder), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE scratch (pk INTEGER PRIMARY KEY, content TEXT NOT NULL)")
    started = time.process_time()
    for start in range(0, len(rows), BATCH_ROWS):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO scratch VALUES (?, ?)", rows[start : start + BATCH_ROWS])
        conn.execute("COMMIT")
    took = time.process_time() - started
    conn.close()
    return took


class DriverClock:
    """CPU seconds spent inside the database driver's execute calls (SQLite's own work)."""

    def __init__(self, engine: Engine) -> None:
        self.seconds = 0.0
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: object) -> None:
        self._started = time.process_time()

    def _after(self, *_: object) -> None:
        self.seconds += time.process_time() - self._started


def merge_round(
    recording: Recording,
    folder: Path,
    profile: cProfile.Profile | None = None,
    page_delay: float = 0.0,
) -> tuple[float, float, PullSummary, str]:
    """CPU seconds of one replayed pull and of its statements in the driver, its summary,
    and the digest of the store it left."""
    db = _fresh_store(recording, folder)
    engine = create_store_engine(f"sqlite:///{db}")
    driver = DriverClock(engine)
    ehr = ReplayEhr(recording, page_delay)
    started = time.process_time()
    if profile is not None:
        profile.enable()
    summary = _pull(engine, ehr, recording.tenant, lambda: REPLAY_NOW)
    if profile is not None:
        profile.disable()
    took = time.process_time() - started
    engine.dispose()
    assert not summary.failed, summary.failed
    assert not any(ehr.pages.values()), "a recorded search was not asked again"
    return took, driver.seconds, summary, store_digest(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=5_000)
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", default="http://127.0.0.1:8090/fhir")
    parser.add_argument("--recording", type=Path, default=Path(tempfile.gettempdir()) / "merge_cpu")
    parser.add_argument("--record", action="store_true", help="record again")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--profile-order", default="tottime", help="cProfile sort key (tottime, cumulative)"
    )
    parser.add_argument(
        "--page-delay-ms",
        type=float,
        default=0.0,
        help="wait before each page, as an EHR slower than the merge: then the puller "
        "commits every page alone (0: pages are all there, merged several per commit)",
    )
    args = parser.parse_args()
    if args.record or not (args.recording / "meta.json").exists():
        record(args.recording, args.base.rstrip("/"), args.patients, args.changes)
    recording = load(args.recording)
    versions = recording.versions
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        parse = [parse_round(recording) for _ in range(args.rounds)]
        insert = [insert_round(recording, folder) for _ in range(args.rounds)]
        merge: list[float] = []
        driver: list[float] = []
        digests: set[str] = set()
        for round_number in range(1, args.rounds + 1):
            took, in_driver, summary, digest = merge_round(
                recording, folder, page_delay=args.page_delay_ms / 1000
            )
            merge.append(took)
            driver.append(in_driver)
            digests.add(digest)
            print(f"round {round_number}: merge {took * 1000 / versions:.4f} ms/version")
        if args.profile:
            profile = cProfile.Profile(time.process_time)  # CPU, not waits
            merge_round(recording, folder, profile, args.page_delay_ms / 1000)
            pstats.Stats(profile).sort_stats(args.profile_order).print_stats(30)
    per = {name: statistics.median(s) * 1000 / versions for name, s in _named(parse, insert, merge)}
    print(f"{versions} versions in {len(recording.pages)} pages; {summary.line()}")
    print(f"store digest: {', '.join(sorted(digests))}")
    print(
        f"CPU ms/version, median of {args.rounds}: merge {per['merge']:.4f}, "
        f"parse {per['parse']:.4f} (merge = {per['merge'] / per['parse']:.1f}x parse), "
        f"bare insert {per['insert']:.4f} (merge = {per['merge'] / per['insert']:.1f}x insert)"
    )
    # Other load on the machine only ever adds CPU time (caches, frequency): the fastest
    # round is the steadiest figure to compare two versions of the code by.
    print(
        f"fastest merge round: {min(merge) * 1000 / versions:.4f} CPU ms/version; "
        f"in the driver's execute calls (SQLite's work, commits aside) "
        f"{statistics.median(driver) * 1000 / versions:.4f}"
    )


def _named(
    parse: list[float], insert: list[float], merge: list[float]
) -> list[tuple[str, list[float]]]:
    return [("parse", parse), ("insert", insert), ("merge", merge)]


if __name__ == "__main__":
    main()
