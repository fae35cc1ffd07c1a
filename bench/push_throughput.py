"""Benchmark: pushing encounters into the sandbox, ours against a naive loop and the ceiling.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/push_throughput.py [--encounters 1000] [--naive 100]
[--concurrency 4] [--round-trip-ms 20]`.

Three ways to put N typical encounters into the sandbox, in this process, each under a
namespace of its own, interleaved in rounds so that each meets the sandbox at the same size
(HAPI slows down as its database grows):
  ours     - documents accepted into a SQLite store (not timed), then the push worker
             drains the outbox: one transaction Bundle per encounter, built from the store,
             --concurrency Bundles at a time (ADAPTER_WORKER_CONCURRENCY)
  naive    - what a basic client script does: POST each resource on its own, one after
             the other on one kept-alive connection, rewriting references to the ids the
             server assigned (run on --naive encounters, since it is slow; its rate is per
             resource like the others)
  ceiling  - the same transaction Bundles, pre-built in memory, POSTed straight to the
             sandbox with the same concurrency as ours: the most a client can get from
             this server that way
With --round-trip-ms above 0, all three talk to the sandbox through our latency proxy
(tests/integration/faultproxy.py, in a process of its own), which holds each request and
each reply for half that time: the network between a clinic and a hosted EHR, which this
machine's loopback does not have (its kernel lacks netem).
Rates are resources per second, counting every resource of every encounter's mapping
(ours sends shared resources, such as the clinic, only once, which is its due). Peak
memory of the worker: Python heap peak (tracemalloc) while draining, and the process's
peak RSS at that point.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import sandbox_cpu_seconds  # noqa: E402  (bench/, beside this file)

from adapter.ehr.client import FhirClient  # noqa: E402
from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.references import REFERENCE  # noqa: E402
from adapter.sync.push.worker import PushWorker  # noqa: E402
from mappings import map_submission  # noqa: E402
from mappings.common.bundle import transaction_bundle  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import EncounterSubmission  # noqa: E402
from mappings.jsontypes import JsonValue, Resource  # noqa: E402
from tests.integration.support import encounter, encounters  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def context() -> MappingContext:
    return MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")


@dataclass
class Tally:
    resources: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.resources / self.seconds

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Adds the wall time, this process's CPU time and the sandbox's CPU time."""
        wall, cpu, server = time.perf_counter(), time.process_time(), (sandbox_cpu_seconds() or 0.0)
        yield
        self.seconds += time.perf_counter() - wall
        self.client_cpu += time.process_time() - cpu
        self.server_cpu += (sandbox_cpu_seconds() or 0.0) - server

    def per_thousand(self, seconds: float) -> float:
        return 1000 * seconds / self.resources


class Ours:
    """Our path: documents accepted into a SQLite store (untimed), the worker drains it."""

    def __init__(self, base: str, folder: Path, concurrency: int) -> None:
        self.ctx = context()
        self.engine = create_store_engine(f"sqlite:///{folder / 'store.db'}")
        upgrade(self.engine)
        self.client = FhirClient(base)
        self.worker = PushWorker(self.engine, self.client, owner="bench", concurrency=concurrency)
        self.tally = Tally()
        self.heap_peak = 0

    def round(self, subs: list[EncounterSubmission]) -> None:
        for sub in subs:
            self.tally.resources += len(map_submission(sub, self.ctx))
            self._accept(sub)
        with self.tally.timing():
            summary = self.worker.drain()
        assert summary.done == len(subs), summary

    def measure_heap(self, subs: list[EncounterSubmission]) -> None:
        """The worker's Python heap peak draining `subs` (untimed: tracemalloc slows it)."""
        for sub in subs:
            self._accept(sub)
        tracemalloc.start()
        summary = self.worker.drain()
        self.heap_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert summary.done == len(subs), summary

    def _accept(self, sub: EncounterSubmission) -> None:
        ingest_encounter(self.engine, sub.model_dump_json(exclude_none=True).encode(), self.ctx)


class Ceiling:
    """The same transaction Bundles, pre-built, POSTed straight to the sandbox, `concurrency`
    at a time, each thread on its own kept-alive connection. The very first goes alone, as
    ours does: it creates the clinic every other Bundle refers to, and conditional creates
    of one resource racing each other can duplicate it on HAPI."""

    def __init__(self, base: str, concurrency: int) -> None:
        self.base, self.ctx, self.tally = base, context(), Tally()
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ceiling")
        self.local = threading.local()
        self.first = True

    def round(self, subs: list[EncounterSubmission]) -> None:
        bundles = []
        for sub in subs:
            mapped = map_submission(sub, self.ctx)
            self.tally.resources += len(mapped)
            bundles.append(orjson.dumps(transaction_bundle(mapped, self.ctx)))
        with self.tally.timing():
            if self.first:
                self._post(bundles.pop(0))
                self.first = False
            for _ in self.pool.map(self._post, bundles):
                pass

    def _post(self, body: bytes) -> None:
        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = requests.Session()
        http.post(self.base, data=body, headers=FHIR_JSON, timeout=300).raise_for_status()


class Naive:
    """A basic client script: POST each resource alone, rewriting references to new ids.

    Resources go in dependency order; where two refer to each other (an Encounter and its
    indication), the first is POSTed without the reference and PUT again once the other
    exists, as such a script has to.
    """

    def __init__(self, base: str, http: requests.Session) -> None:
        self.base, self.http, self.ctx, self.tally = base, http, context(), Tally()

    def round(self, subs: list[EncounterSubmission]) -> None:
        mapped = [map_submission(sub, self.ctx) for sub in subs]
        with self.tally.timing():
            for resources in mapped:
                self._post_all(resources)
        self.tally.resources += sum(len(r) for r in mapped)

    def _post_all(self, resources: list[Resource]) -> None:
        assigned: dict[str, str] = {}
        waiting = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        deferred: list[str] = []
        while waiting:
            ready = [k for k, r in waiting.items() if _refs(r) <= assigned.keys() | {k}]
            if not ready:  # a cycle: send one without its unresolved references, fix later
                key = next(iter(waiting))
                deferred.append(key)
                ready = [key]
            for key in ready:
                assigned[key] = _send(self.http, self.base, waiting.pop(key), assigned, None)
        for key in deferred:
            original = next(r for r in resources if f"{r['resourceType']}/{r['id']}" == key)
            _send(self.http, self.base, original, assigned, assigned[key])


def _refs(res: Resource) -> set[str]:
    return {f"{m.group(1)}/{m.group(2)}" for m in REFERENCE.finditer(orjson.dumps(res).decode())}


def _send(
    http: requests.Session,
    base: str,
    res: Resource,
    assigned: dict[str, str],
    existing: str | None,
) -> str:
    body = _resolved({k: v for k, v in res.items() if k != "id"}, assigned)
    assert isinstance(body, dict)
    if existing is None:
        url, method = f"{base}/{res['resourceType']}", "POST"
    else:
        body["id"] = existing.split("/")[1]
        url, method = f"{base}/{existing}", "PUT"
    reply = http.request(method, url, data=orjson.dumps(body), headers=FHIR_JSON, timeout=60)
    reply.raise_for_status()
    return f"{res['resourceType']}/{reply.json()['id']}"


def _resolved(value: JsonValue, assigned: dict[str, str]) -> JsonValue | None:
    """References rewritten to the server's ids; unresolved Reference objects dropped."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and REFERENCE.fullmatch(f'"reference":"{ref}"'):
            if ref not in assigned:
                return None
            value = {**value, "reference": assigned[ref]}
        out: dict[str, JsonValue] = {
            k: r for k, v in value.items() if (r := _resolved(v, assigned)) is not None
        }
        return out or None
    if isinstance(value, list):
        items: list[JsonValue] = [r for v in value if (r := _resolved(v, assigned)) is not None]
        return items or None
    return value


@contextmanager
def network(base: str, round_trip_ms: float) -> Iterator[str]:
    """`base`, or the URL of a latency proxy in front of it in a process of its own."""
    if round_trip_ms <= 0:
        yield base
        return
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faultproxy", base]
        + ["--round-trip-ms", str(round_trip_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None
        yield proxy.stdout.readline().strip()
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="encounters for the naive loop")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="Bundles in flight at once")
    parser.add_argument("--round-trip-ms", type=float, default=0.0, help="added network delay")
    args = parser.parse_args()
    sandbox = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    requests.get(f"{sandbox}/metadata", timeout=30).raise_for_status()
    subs = list(encounters(args.encounters))
    per_round, naive_per_round = args.encounters // args.rounds, args.naive // args.rounds
    print(
        f"{args.encounters} encounters ({args.naive} for naive), concurrency "
        f"{args.concurrency}, added round trip {args.round_trip_ms:g} ms",
        flush=True,
    )
    with (
        network(sandbox, args.round_trip_ms) as base,
        tempfile.TemporaryDirectory() as folder,
        requests.Session() as http,
    ):
        requests.get(f"{base}/metadata", timeout=30).raise_for_status()
        ours = Ours(base, Path(folder), args.concurrency)
        ceiling, naive = Ceiling(base, args.concurrency), Naive(base, http)
        for n in range(args.rounds):
            # Interleaved, so that all three meet the sandbox at the same size.
            # Rotated, so that none always meets the sandbox first in a round.
            chunk = subs[n * per_round : (n + 1) * per_round]
            runs = [
                (ours.round, chunk),
                (ceiling.round, chunk),
                (naive.round, chunk[:naive_per_round]),
            ]
            for run, part in runs[n % 3 :] + runs[: n % 3]:
                run(part)
            print(
                f"round {n + 1}/{args.rounds}: ours {ours.tally.rate:6.0f} res/s, "
                f"ceiling {ceiling.tally.rate:6.0f} res/s, naive {naive.tally.rate:6.0f} res/s",
                flush=True,
            )
        extra = range(args.encounters, args.encounters + per_round)
        ours.measure_heap([encounter(n) for n in extra])
        ours.client.close()
        ours.engine.dispose()
        ceiling.pool.shutdown()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("         resources   seconds      res/s   CPU s per 1000 resources: client  sandbox")
    for name, tally in (("ours", ours.tally), ("ceiling", ceiling.tally), ("naive", naive.tally)):
        print(
            f"{name:8} {tally.resources:9d} {tally.seconds:9.1f} {tally.rate:10.0f}"
            f" {tally.per_thousand(tally.client_cpu):32.2f}"
            f" {tally.per_thousand(tally.server_cpu):8.2f}"
        )
    print(
        f"worker heap peak {ours.heap_peak / 2**20:.1f} MiB (tracemalloc, draining one more "
        f"round of {per_round}, untimed); process RSS peak {rss:.0f} MiB"
    )
    print(f"ours / naive   {ours.tally.rate / naive.tally.rate:6.1f}x   (target >= 10x)")
    print(f"ours / ceiling {ours.tally.rate / ceiling.tally.rate:6.0%}    (target >= 80%)")


if __name__ == "__main__":
    main()
