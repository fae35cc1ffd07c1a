"""Benchmark: pushing encounters into the sandbox, ours against a naive loop and the ceiling.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/push_throughput.py [--encounters 1000] [--naive 100]`.

Three ways to put N typical encounters into the sandbox, in this process, each under a
namespace of its own, all with one connection at a time, interleaved in rounds so that
each meets the sandbox at the same size (HAPI slows down as its database grows):
  ours     - documents accepted into a SQLite store (not timed), then the push worker
             drains the outbox: one transaction Bundle per encounter, built from the store
  naive    - what a basic client script does: POST each resource on its own, in order,
             rewriting references to the ids the server assigned (run on --naive
             encounters, since it is slow; its rate is per resource like the others)
  ceiling  - the same transaction Bundles, pre-built in memory, POSTed straight to the
             sandbox: the most any client can get from this server on one connection
Rates are resources per second, counting every resource of every encounter's mapping
(ours sends shared resources, such as the clinic, only once, which is its due). Peak
memory of the worker: Python heap peak (tracemalloc) while draining, and the process's
peak RSS at that point.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.fhir.client import FhirClient  # noqa: E402
from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.references import REFERENCE  # noqa: E402
from adapter.sync.push import PushWorker  # noqa: E402
from mappings.bundle import transaction_bundle  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import EncounterSubmission  # noqa: E402
from mappings.jsontypes import JsonValue, Resource  # noqa: E402
from mappings.submission import map_submission  # noqa: E402
from tests.integration.support import encounters  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def context() -> MappingContext:
    return MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")


@dataclass
class Tally:
    resources: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.resources / self.seconds


class Ours:
    """Our path: documents accepted into a SQLite store (untimed), the worker drains it."""

    def __init__(self, base: str, folder: Path) -> None:
        self.ctx = context()
        self.engine = create_store_engine(f"sqlite:///{folder / 'store.db'}")
        upgrade(self.engine)
        self.client = FhirClient(base)
        self.worker = PushWorker(self.engine, self.client, owner="bench")
        self.tally = Tally()
        self.heap_peak = 0

    def round(self, subs: list[EncounterSubmission]) -> None:
        for sub in subs:
            self.tally.resources += len(map_submission(sub, self.ctx))
            ingest_encounter(self.engine, sub.model_dump_json(exclude_none=True).encode(), self.ctx)
        tracemalloc.start()
        start = time.perf_counter()
        summary = self.worker.drain()
        self.tally.seconds += time.perf_counter() - start
        self.heap_peak = max(self.heap_peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert summary.done == len(subs), summary


class Ceiling:
    """The same transaction Bundles, pre-built, POSTed straight to the sandbox."""

    def __init__(self, base: str, http: requests.Session) -> None:
        self.base, self.http, self.ctx, self.tally = base, http, context(), Tally()

    def round(self, subs: list[EncounterSubmission]) -> None:
        bundles = []
        for sub in subs:
            mapped = map_submission(sub, self.ctx)
            self.tally.resources += len(mapped)
            bundles.append(orjson.dumps(transaction_bundle(mapped, self.ctx)))
        start = time.perf_counter()
        for body in bundles:
            self.http.post(self.base, data=body, headers=FHIR_JSON, timeout=300).raise_for_status()
        self.tally.seconds += time.perf_counter() - start


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
        start = time.perf_counter()
        for resources in mapped:
            self._post_all(resources)
        self.tally.seconds += time.perf_counter() - start
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="encounters for the naive loop")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    base = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    requests.get(f"{base}/metadata", timeout=30).raise_for_status()
    subs = list(encounters(args.encounters))
    per_round, naive_per_round = args.encounters // args.rounds, args.naive // args.rounds
    with tempfile.TemporaryDirectory() as folder, requests.Session() as http:
        ours, ceiling, naive = Ours(base, Path(folder)), Ceiling(base, http), Naive(base, http)
        for n in range(args.rounds):
            # Interleaved, so that all three meet the sandbox at the same size.
            chunk = subs[n * per_round : (n + 1) * per_round]
            ours.round(chunk)
            ceiling.round(chunk)
            naive.round(chunk[:naive_per_round])
            print(
                f"round {n + 1}/{args.rounds}: ours {ours.tally.rate:6.0f} res/s, "
                f"ceiling {ceiling.tally.rate:6.0f} res/s, naive {naive.tally.rate:6.0f} res/s",
                flush=True,
            )
        ours.client.close()
        ours.engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for name, tally in (("ours", ours.tally), ("ceiling", ceiling.tally), ("naive", naive.tally)):
        print(
            f"{name:8} {tally.resources:7d} resources {tally.seconds:8.1f} s"
            f" {tally.rate:8.0f} res/s"
        )
    print(
        f"worker heap peak {ours.heap_peak / 2**20:.1f} MiB (tracemalloc, while draining); "
        f"process RSS peak {rss:.0f} MiB"
    )
    print(f"ours / naive   {ours.tally.rate / naive.tally.rate:6.1f}x   (target >= 10x)")
    print(f"ours / ceiling {ours.tally.rate / ceiling.tally.rate:6.0%}    (target >= 80%)")


if __name__ == "__main__":
    main()
