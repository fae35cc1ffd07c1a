"""Benchmark: reads from our `/fhir` face against the sandbox (HAPI FHIR JPA), same data.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/read_throughput.py [--encounters 300] [--requests 2000]`.

N distinct typical encounters (52 resources each) are accepted into a fresh SQLite store
(through `ingest_encounter`, as the clinic API does) and POSTed to the sandbox as the same
transaction Bundles the push worker sends. `adapter serve` then runs on that store, and an
async load generator (httpx, 32 connections, on loopback) sends each server, in turn:
  read       GET Patient/{id} of a random patient
  search     GET Observation?patient={id}&code=http://loinc.org|8867-4&_count=50
  everything GET Patient/{id}/$everything
and reports throughput, p50 and p99 per server and the ratios. Last, our service's RSS is
sampled while one client pages through every Observation (`_count=50`): flat memory means
a page costs the same whatever the result size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.ingest import ingest_encounter  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from mappings import identity  # noqa: E402
from mappings.bundle import transaction_bundle  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.submission import map_submission  # noqa: E402
from tests.integration.support import encounters  # noqa: E402
from tests.integration.test_clinic_api import serving  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
CONNECTIONS = 32
KEY = f"bench-{uuid.uuid4().hex}"
HEART_RATE = "http://loinc.org|8867-4"


def load(count: int, sandbox: str, folder: Path) -> tuple[MappingContext, list[str], list[str]]:
    """Our store and the sandbox with `count` encounters; each side's patient ids."""
    ctx = MappingContext(namespace=f"https://fhir.bench-{uuid.uuid4().hex[:10]}.example")
    engine = create_store_engine(f"sqlite:///{folder / 'adapter.db'}")
    upgrade(engine)
    ours: list[str] = []
    theirs: list[str] = []
    started = time.perf_counter()
    for sub in encounters(count):
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)
        ours.append(identity.patient(ctx, sub.patient.mrn).id)
        bundle = transaction_bundle(map_submission(sub, ctx), ctx)
        reply = requests.post(sandbox, data=json.dumps(bundle), headers=FHIR_JSON, timeout=120)
        reply.raise_for_status()
        locations = [e["response"]["location"] for e in reply.json()["entry"]]
        theirs.append(next(loc for loc in locations if loc.startswith("Patient/")).split("/")[1])
    engine.dispose()
    print(f"loaded {count} encounters into both in {time.perf_counter() - started:.0f} s")
    return ctx, ours, theirs


def paths(kind: str, patient: str) -> str:
    if kind == "read":
        return f"Patient/{patient}"
    if kind == "search":
        return f"Observation?patient={patient}&code={HEART_RATE}&_count=50"
    return f"Patient/{patient}/$everything"


async def hammer(base: str, kind: str, patients: list[str], total: int) -> list[float]:
    """`total` requests over 32 connections; each one's latency in seconds."""
    headers = FHIR_JSON | {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=CONNECTIONS)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker(share: int) -> None:
            for _ in range(share):
                path = paths(kind, random.choice(patients))
                began = time.perf_counter()
                reply = await client.get(path, timeout=60)
                latencies.append(time.perf_counter() - began)
                reply.raise_for_status()

        await asyncio.gather(*(worker(total // CONNECTIONS) for _ in range(CONNECTIONS)))
    return latencies


def measure(base: str, kind: str, patients: list[str], total: int) -> tuple[float, float, float]:
    asyncio.run(hammer(base, kind, patients, CONNECTIONS * 4))  # warm up
    began = time.perf_counter()
    latencies = asyncio.run(hammer(base, kind, patients, total))
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def service_pid(port: str) -> int:
    found = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True)
    return int(found.stdout.split("pid=")[1].split(",")[0])


def page_through(base: str, pid: int) -> None:
    headers = FHIR_JSON | {"Authorization": f"Bearer {KEY}"}
    url: str | None = f"{base}Observation?_count=50"
    samples, pages = [rss_mib(pid)], 0
    while url:
        bundle = requests.get(url, headers=headers, timeout=60).json()
        pages += 1
        samples.append(rss_mib(pid))
        url = next((ln["url"] for ln in bundle["link"] if ln["relation"] == "next"), None)
    quarter = samples[: max(len(samples) // 4, 1)]
    print(
        f"paging all Observations: {pages} pages; service RSS start {samples[0]:.1f} MiB, "
        f"after the first quarter {max(quarter):.1f} MiB, peak {max(samples):.1f} MiB, "
        f"end {samples[-1]:.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    sandbox = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ctx, ours, theirs = load(args.encounters, sandbox, folder)
        keys = folder / "keys.json"
        keys.write_text(json.dumps([{"key": KEY, "tenant": ctx.tenant, "scopes": ["system/*.rs"]}]))
        settings = {
            "ADAPTER_DATABASE_URL": f"sqlite:///{folder / 'adapter.db'}",
            "ADAPTER_EHR_BASE_URL": "",
            "ADAPTER_RUN_WORKER": "false",
            "ADAPTER_NAMESPACE": ctx.namespace,
            "ADAPTER_API_KEYS_FILE": str(keys),
            "ADAPTER_LOG_LEVEL": "WARNING",
        }
        with serving(settings, folder / "service.log") as url:
            base = f"{url}/fhir/"
            print(f"{'operation':<11} {'server':<6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for kind in ("read", "search", "everything"):
                rates = []
                for name, server, patients in (
                    ("ours", base, ours),
                    ("HAPI", f"{sandbox}/", theirs),
                ):
                    rate, p50, p99 = measure(server, kind, patients, args.requests)
                    rates.append(rate)
                    print(f"{kind:<11} {name:<6} {rate:8.0f} {p50:8.1f} {p99:8.1f}")
                print(f"{kind:<11} ours/HAPI throughput {rates[0] / rates[1]:.2f}x")
            page_through(base, service_pid(url.rsplit(":", 1)[1]))


if __name__ == "__main__":
    main()
