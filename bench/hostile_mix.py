"""Benchmark: normal `/fhir` searches alone, then beside hostile searches running in parallel.

Run: `.venv/bin/python bench/hostile_mix.py [--encounters 800] [--connections 8]
[--hostile 4] [--seconds 15] [--store FILE]` (`--store`: keep the loaded store in FILE and
copy it from there next time, as bench/read_throughput.py does).

1. N typical encounters (25 Observations each: 800 make 20,000) go into a fresh SQLite
   store through the ingest path.
2. `adapter serve` runs on it (its own processes, default settings: the search limits and
   the statement budget as shipped, two web processes, push worker off).
3. Each hostile request of issue 15 is sent once, alone, and its status and time printed:
     date pair x200       Observation?date=ge2020&date=le2030 repeated 200 times (6 KB URL)
     identifier x999      Observation?identifier=... repeated 999 times
     500 alternatives     Observation?code=c0,c1,...,c499
     revinclude, 1000     Patient?_count=1000&_revinclude=Observation:subject (20,000 rows)
     revinclude, legal    Patient?_count=30&_revinclude=Observation:subject&_revinclude=
                          Provenance:target (750 Observations, within every limit)
     include, 1000        Observation?_count=1000&_include=Observation:patient
                          &_include=Observation:encounter
4. Normal searches (`Observation?patient=...&code=...&_count=50`, a different patient each
   time) run on --connections connections for --seconds: p50 and p99 alone. Then the same
   again while --hostile more connections send the hostile requests above in a loop.
   Printed: both lines and the ratio of the p99s. Target (issue 15): within 2x.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
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

HOSTILE = {
    "date pair x200": "Observation?" + "&".join(["date=ge2020&date=le2030"] * 200),
    "identifier x999": "Observation?" + "&".join(f"identifier=x{i}" for i in range(999)),
    "500 alternatives": "Observation?code=" + ",".join(f"c{i}" for i in range(500)),
    "revinclude, 1000": "Patient?_count=1000&_revinclude=Observation:subject",
    "revinclude, legal": (
        "Patient?_count=30&_revinclude=Observation:subject&_revinclude=Provenance:target"
    ),
    "include, 1000": (
        "Observation?_count=1000&_include=Observation:patient&_include=Observation:encounter"
    ),
}


def probe_hostile(base: str, auth: dict[str, str]) -> None:
    """Each hostile request once, alone: its status and how long it took."""
    with requests.Session() as http:
        for name, path in HOSTILE.items():
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
    base: str, normal: list[str], auth: dict[str, str], args: argparse.Namespace
) -> tuple[LoadResult, LoadResult]:
    """The normal searches while `args.hostile` connections send the hostile ones."""
    hostile: list[LoadResult] = []
    paths = list(HOSTILE.values())

    def attack() -> None:
        hostile.append(
            run_load(base, paths, auth, connections=args.hostile, seconds=args.seconds + 2)
        )

    attacker = threading.Thread(target=attack)
    attacker.start()
    time.sleep(1)  # the attack is under way before the measured warm-up ends
    result = run_load(base, normal, auth, connections=args.connections, seconds=args.seconds)
    attacker.join()
    return result, hostile[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=800)
    parser.add_argument("--connections", type=int, default=8, help="normal searches")
    parser.add_argument("--hostile", type=int, default=4, help="hostile connections")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--store", type=Path, help="a store file of ours (see the docstring)")
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
        with our_service(db, Path(folder), args.web_workers) as (base, _):
            probe_hostile(base, auth)
            alone = run_load(base, normal, auth, connections=args.connections, seconds=args.seconds)
            print(alone.line("normal searches alone"), flush=True)
            print(f"{'':8}load average after: {load_average()}", flush=True)
            beside, hostile = mixed(base, normal, auth, args)
            print(beside.line("normal searches, hostile beside"))
            print(hostile.line("hostile searches (non-2xx: refused)"))
            print(f"{'':8}load average after: {load_average()}")
    ratio = beside.percentile(99) / alone.percentile(99)
    print(f"p99 with the hostile mix / p99 alone: {ratio:.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
