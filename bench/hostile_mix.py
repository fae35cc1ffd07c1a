"""Benchmark: normal `/fhir` searches alone, then beside hostile searches running in parallel.

Run: `.venv/bin/python bench/hostile_mix.py [--encounters 800] [--connections 8]
[--hostile 4] [--seconds 15] [--store FILE]` (`--store`: keep the loaded store in FILE and
copy it from there next time, as bench/read_throughput.py does).

1. N typical encounters (25 Observations each: 800 make 20,000) go into a fresh SQLite
   store through the ingest path.
2. `adapter serve` runs on it (its own processes, default settings: the search limits and
   the statement budget as shipped, two web processes, push worker off).
3. Each search below is sent once, alone, and its status and time printed. Hostile (issue
   15's, and a fan-out past the include limit; each refused):
     date pair x200       Observation?date=ge2020&date=le2030 repeated 200 times
     identifier x999      Observation?identifier=... repeated 999 times
     500 alternatives     Observation?code=c0,c1,...,c499
     revinclude, 1000     Patient?_count=1000&_revinclude=Observation:subject (20,000 rows)
   Heavy (within every limit, served):
     revinclude, legal    Patient?_count=30&_revinclude=Observation:subject&_revinclude=
                          Provenance:target (780 resources added)
     include, 1000        Observation?_count=1000&_include=Observation:patient
                          &_include=Observation:encounter (a page of 1000, 80 added)
4. Normal searches (`Observation?patient=...&code=...&_count=50`, a different patient each
   time) run on --connections connections for --seconds: p50 and p99 alone. Then the same
   again while --hostile more connections send the hostile searches in a loop, and again
   with the heavy ones among them. Printed: each line and the ratio of the p99s to the p99
   alone. Target (issue 15): within 2x beside the hostile ones.
`--unbounded` lifts every limit and the budget, to see what they spare the service.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, run_load  # noqa: E402  (bench/, beside this file)
from read_throughput import (  # noqa: E402
    API_KEY,
    first_observation_code,
    load_average,
    load_ours,
    our_service,
    our_targets,
    reuse_store,
)

from mappings.context import MappingContext  # noqa: E402
from tests.integration.support import encounters  # noqa: E402

# Issue 15's hostile searches, and a fan-out past the include limit: each refused.
HOSTILE = {
    "date pair x200": "Observation?" + "&".join(["date=ge2020&date=le2030"] * 200),
    "identifier x999": "Observation?" + "&".join(f"identifier=x{i}" for i in range(999)),
    "500 alternatives": "Observation?code=" + ",".join(f"c{i}" for i in range(500)),
    "revinclude, 1000": "Patient?_count=1000&_revinclude=Observation:subject",
}
ISSUE_CASES = ("date pair x200", "identifier x999", "500 alternatives")
# The heaviest searches within every limit: served, at the cost of a big page.
HEAVY = {
    "revinclude, legal": (
        "Patient?_count=30&_revinclude=Observation:subject&_revinclude=Provenance:target"
    ),
    "include, 1000": (
        "Observation?_count=1000&_include=Observation:patient&_include=Observation:encounter"
    ),
}
# Every limit far past what the hostile requests ask, and an hour per statement.
UNBOUNDED = {
    f"ADAPTER_SEARCH_MAX_{name}": "1000000"
    for name in ("QUERY_LENGTH", "PARAMETERS", "REPEATS", "ALTERNATIVES", "INCLUDES", "INCLUDED")
} | {"ADAPTER_STATEMENT_TIMEOUT_MS": "3600000"}


def wait_served(base: str, auth: dict[str, str], answers: int = 20) -> None:
    """Until `answers` searches in a row are 200: each web process has found its store
    migrated (until then it answers 503, the store not ready)."""
    deadline, row = time.monotonic() + 120, 0
    while row < answers:
        if time.monotonic() > deadline:
            raise SystemExit("our service did not serve searches within 120 s")
        ok = requests.get(f"{base}/Patient?_count=1", headers=auth, timeout=30).ok
        row = row + 1 if ok else 0
        time.sleep(0 if ok else 0.2)


def probe_hostile(base: str, auth: dict[str, str]) -> None:
    """Each hostile request once, alone: its status and how long it took."""
    with requests.Session() as http:
        for name, path in (HOSTILE | HEAVY).items():
            start = time.perf_counter()
            reply = http.get(f"{base}/{path}", headers=auth, timeout=300)
            took = 1000 * (time.perf_counter() - start)
            entries = len(reply.json().get("entry", [])) if reply.status_code == 200 else 0
            print(
                f"hostile {name:18} {reply.status_code}  {took:7.1f} ms  "
                f"({len(path)} characters, {entries} entries)",
                flush=True,
            )


def mixed(
    base: str,
    normal: list[str],
    auth: dict[str, str],
    paths: list[str],
    args: argparse.Namespace,
) -> tuple[LoadResult, LoadResult]:
    """The normal searches while `args.hostile` connections send `paths` in a loop, from a
    process of their own (two load generators in one process would share its GIL)."""
    with ProcessPoolExecutor(1) as attacker:
        seconds = args.seconds + 5
        hostile = attacker.submit(
            run_load, base, paths, auth, connections=args.hostile, seconds=seconds, warmup=0
        )
        time.sleep(1)  # the attack is under way before the measured warm-up ends
        result = run_load(base, normal, auth, connections=args.connections, seconds=args.seconds)
        return result, hostile.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=800)
    parser.add_argument("--connections", type=int, default=8, help="normal searches")
    parser.add_argument("--hostile", type=int, default=4, help="hostile connections")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--store", type=Path, help="a store file of ours (see the docstring)")
    parser.add_argument(
        "--unbounded",
        action="store_true",
        help="lift the search limits and the statement budget (the service before issue 15)",
    )
    args = parser.parse_args()
    ctx = MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")
    subs = list(encounters(args.encounters))
    code = first_observation_code(subs, ctx)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        if args.store and args.store.exists():
            reuse_store(args.store, db, len(subs))
            print("store copied from", args.store)
        else:
            print(f"loaded {len(subs)} encounters in {load_ours(db, subs, ctx):.1f} s", flush=True)
            if args.store:
                shutil.copy(db, args.store)
        normal = our_targets(db, code, random.Random(20261206)).searches
        auth = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/fhir+json"}
        # No EHR: the service is ready without one, and only serves reads here.
        settings = {"ADAPTER_EHR_BASE_URL": ""} | (UNBOUNDED if args.unbounded else {})
        with our_service(db, Path(folder), args.web_workers, settings) as (base, _):
            wait_served(base, auth)
            probe_hostile(base, auth)
            alone = run_load(base, normal, auth, connections=args.connections, seconds=args.seconds)
            print(alone.line("normal searches alone"), flush=True)
            print(f"{'':8}load average after: {load_average()}", flush=True)
            issue = [HOSTILE[name] for name in ISSUE_CASES]
            for name, paths in (
                ("issue 15's three", issue),
                ("hostile", list(HOSTILE.values())),
                ("hostile and heavy", list((HOSTILE | HEAVY).values())),
            ):
                beside, hostile = mixed(base, normal, auth, paths, args)
                print(beside.line(f"normal, {name} beside"))
                print(hostile.line(f"{name} (non-2xx: refused)"))
                ratio = beside.percentile(99) / alone.percentile(99)
                print(f"{'':8}p99 beside {name} / p99 alone: {ratio:.2f}x (target: at most 2x)")
                print(f"{'':8}load average after: {load_average()}", flush=True)


if __name__ == "__main__":
    main()
