"""Benchmark: a system Bulk Data `$export` of our service against HAPI's, same data, same run.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/bulk_export.py [--encounters 1000] [--store FILE]
[--ours-only]`.

Setup (not timed): N distinct typical encounters (52 resources each) go into a fresh
SQLite store (`ingest_encounter`; `--store FILE` reuses a store an earlier run kept, as
`bench/read_throughput.py` does) and, unless `--ours-only`, into the sandbox (the same
transaction Bundles), which is then left to settle. Then:
  ours - `adapter serve` on the store (one web process: one core for the export thread),
         `GET /fhir/$export` with `Prefer: respond-async`, the status URL polled every
         0.2 s until the manifest; timed from kick-off to manifest. Resources: the
         manifest's counts. CPU: the user and system time of the service's processes
         over the same span (resources per CPU-second is the rate on one core, whatever
         else the machine runs). Memory: the service's peak resident set (VmHWM) against
         its resident set just before the kick-off.
  HAPI - the sandbox's own `$export` (system level, every type), polled the same way
         (its `Retry-After` is 2 s here: polling faster is only fairer to it); timed from
         kick-off to manifest; resources counted by downloading its files; CPU: its JVM's
         over the same span, when the sandbox was started from this work tree.
Rates are resources per second of that time; the ratio is ours over HAPI's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import cpu_seconds, sandbox_cpu_seconds  # noqa: E402
from read_throughput import (  # noqa: E402  (bench/, beside this file)
    API_KEY,
    FHIR_JSON,
    children,
    load_ours,
    reuse_store,
    settle,
)

from mappings import map_submission  # noqa: E402
from mappings.common.bundle import transaction_bundle  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.contract import EncounterSubmission  # noqa: E402
from tests.integration.support import encounters  # noqa: E402

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
POLL_SECONDS = 0.2
DEADLINE_SECONDS = 3600.0
TIMEOUT = 300


def exported(base: str, headers: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Kick off a system export at `base`, poll until its manifest: (seconds, manifest)."""
    with requests.Session() as http:
        start = time.perf_counter()
        reply = http.get(f"{base}/$export", headers=ASYNC | headers, timeout=TIMEOUT)
        if reply.status_code != 202:
            raise SystemExit(f"kick-off answered {reply.status_code}: {reply.text[:300]}")
        status_url = reply.headers["Content-Location"]
        while time.perf_counter() - start < DEADLINE_SECONDS:
            reply = http.get(status_url, headers=headers, timeout=TIMEOUT)
            if reply.status_code == 200:
                return time.perf_counter() - start, reply.json()
            if reply.status_code != 202:
                raise SystemExit(f"status answered {reply.status_code}: {reply.text[:300]}")
            time.sleep(POLL_SECONDS)
    raise SystemExit("the export did not finish within the deadline")


def counted_lines(manifest: dict[str, Any], headers: dict[str, str]) -> int:
    """Resources in the manifest's files, by downloading them (HAPI gives no `count`)."""
    total = 0
    with requests.Session() as http:
        for output in manifest["output"]:
            with http.get(output["url"], headers=headers, timeout=TIMEOUT, stream=True) as reply:
                reply.raise_for_status()
                total += sum(1 for line in reply.iter_lines() if line.strip())
    return total


def peak_and_current_mib(pids: list[int]) -> tuple[float, float]:
    """(VmHWM, VmRSS) summed over `pids`, in MiB."""
    peak = current = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1])
            elif line.startswith("VmRSS:"):
                current += int(line.split()[1])
    return peak / 1024, current / 1024


@contextmanager
def exporting_service(db: Path, folder: Path) -> Iterator[tuple[str, list[int]]]:
    """`adapter serve` on the store, one web process, no EHR: (base URL, its pids)."""
    keys = folder / "keys.json"
    keys.write_text(json.dumps([{"key": API_KEY, "tenant": "default", "scopes": ["system/*.rs"]}]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | {
        "ADAPTER_DATABASE_URL": f"sqlite:///{db}",
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_EHR_BASE_URL": "",
        "ADAPTER_RUN_WORKER": "false",
        "ADAPTER_PULL_INTERVAL_SECONDS": "0",
        "ADAPTER_LOG_LEVEL": "WARNING",
        "ADAPTER_WEB_WORKERS": "1",
        "ADAPTER_EXPORT_DIR": str(folder / "exports"),
    }
    command = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("our service did not become ready")
            time.sleep(0.2)
        yield f"{url}/fhir", [process.pid, *children(process.pid)]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def load_sandbox(base: str, subs: list[EncounterSubmission], ctx: MappingContext) -> float:
    """Post each encounter's transaction Bundle to the sandbox, 4 at a time; a 409 (two
    Bundles updating a shared practitioner at once) is posted again."""
    bundles = [orjson.dumps(transaction_bundle(map_submission(s, ctx), ctx)) for s in subs]
    local = threading.local()

    def post(body: bytes) -> None:
        http = local.__dict__.setdefault("http", requests.Session())
        for _ in range(10):
            reply = http.post(base, data=body, headers=FHIR_JSON, timeout=TIMEOUT)
            if reply.status_code != 409:
                reply.raise_for_status()
                return
            time.sleep(0.5)
        reply.raise_for_status()

    start = time.perf_counter()
    post(bundles[0])  # alone: it creates the clinic every other Bundle refers to
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, bundles[1:]))
    return time.perf_counter() - start


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/ready", timeout=2).ok
    except requests.ConnectionError:
        return False


@dataclass(frozen=True)
class OurExport:
    resources: int
    seconds: float
    cpu_seconds: float
    """CPU time our service's processes used from kick-off to manifest (all threads)."""
    rss_before_mib: float
    rss_peak_mib: float


def run_ours(db: Path, folder: Path) -> OurExport:
    with exporting_service(db, folder) as (base, pids):
        pids = [pids[0], *children(pids[0])]
        _, before = peak_and_current_mib(pids)
        cpu_before = cpu_seconds(pids)
        seconds, manifest = exported(base, {"Authorization": f"Bearer {API_KEY}"})
        cpu = cpu_seconds(pids) - cpu_before
        peak, _ = peak_and_current_mib(pids)
    total = sum(int(output["count"]) for output in manifest["output"])
    return OurExport(total, seconds, cpu, before, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=1000)
    parser.add_argument("--store", type=Path, help="reuse (or keep) our loaded store here")
    parser.add_argument("--ours-only", action="store_true", help="no sandbox: our export only")
    args = parser.parse_args()
    sandbox = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir").rstrip("/")
    ctx = MappingContext(namespace=f"https://fhir.bench-export-{uuid.uuid4().hex[:8]}.example")
    subs = list(encounters(args.encounters))
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        db = folder / "store.db"
        if args.store is not None and args.store.exists():
            reuse_store(args.store, db, args.encounters)
            print(f"ours: reused {args.store}", flush=True)
        else:
            print(f"ours: loaded in {load_ours(db, subs, ctx):.0f} s", flush=True)
            if args.store is not None:
                shutil.copy(db, args.store)
        if not args.ours_only:
            print(f"sandbox: loaded in {load_sandbox(sandbox, subs, ctx):.0f} s", flush=True)
            settle()
        ours = run_ours(db, folder)
        ours_rate = ours.resources / ours.seconds
        print(
            f"ours: {ours.resources} resources in {ours.seconds:.2f} s = {ours_rate:,.0f} "
            f"resources/s; our service's CPU {ours.cpu_seconds:.2f} s = "
            f"{ours.resources / ours.cpu_seconds:,.0f} resources per CPU-second; RSS before "
            f"kick-off {ours.rss_before_mib:.0f} MiB, peak {ours.rss_peak_mib:.0f} MiB "
            f"(+{ours.rss_peak_mib - ours.rss_before_mib:.0f} MiB); load average "
            f"{Path('/proc/loadavg').read_text().split()[0]}",
            flush=True,
        )
        if args.ours_only:
            return
        hapi_cpu_before = sandbox_cpu_seconds()
        hapi_seconds, manifest = exported(sandbox, {})
        hapi_cpu_after = sandbox_cpu_seconds()
        hapi_total = counted_lines(manifest, {"Accept": "application/fhir+ndjson"})
        hapi_rate = hapi_total / hapi_seconds
        print(
            f"HAPI: {hapi_total} resources in {hapi_seconds:.2f} s = {hapi_rate:,.0f} "
            f"resources/s; ours / HAPI = {ours_rate / hapi_rate:.1f}x",
            flush=True,
        )
        if hapi_cpu_before is not None and hapi_cpu_after is not None:
            hapi_cpu = hapi_cpu_after - hapi_cpu_before
            print(
                f"HAPI's JVM CPU {hapi_cpu:.1f} s = {hapi_total / hapi_cpu:,.0f} resources per "
                f"CPU-second; per CPU-second, ours / HAPI = "
                f"{(ours.resources / ours.cpu_seconds) / (hapi_total / hapi_cpu):.1f}x"
            )


if __name__ == "__main__":
    main()
