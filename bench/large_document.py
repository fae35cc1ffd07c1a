"""Benchmark: how long `POST /clinic/encounters` takes on a large document, beside mapping it.

Run alone: `.venv/bin/python bench/large_document.py [--readings 300,1000,3000] [--rounds 3]
[--database-url URL]`.

1. `adapter serve` starts on a free loopback port (its own process, one web process, no
   EHR: push worker and pull off) on a fresh SQLite store in a temp folder, or on
   `--database-url` (e.g. the test PostgreSQL of `make pg-start`) under a tenant of its
   own.
2. Per round and size, a document of that many vital-sign readings (`tests/large_documents.py`:
   the typical example, about 3 resources a reading) with an encounter id of its own is
   posted, timed from sending to the 201 (a first receipt: every resource created, versioned,
   indexed and queued for the push).
3. In this process, interleaved with the posts, the same bytes are mapped alone
   (`bench/mapping_throughput.py`'s `ours`: parse, map, transaction Bundle, bytes): the
   baseline, the mapping rate of the same documents in the same run.
Printed per size: the document's size and resources, the median seconds per document and
resources/s of each, and accepted / mapped (how many times the mapping's time the whole
accept takes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapping_throughput import ours  # noqa: E402  (bench/, beside this file)

from tests.large_documents import encoded, with_readings  # noqa: E402

API_KEY = f"bench-{uuid.uuid4().hex}"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


@contextmanager
def service(database_url: str, folder: Path) -> Iterator[str]:
    """`adapter serve` on `database_url` under a tenant of its own; yields its base URL."""
    keys = folder / "keys.json"
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    keys.write_text(json.dumps([{"key": API_KEY, "tenant": tenant, "scopes": ["clinic/*.*"]}]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | {
        "ADAPTER_DATABASE_URL": database_url,
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_RUN_WORKER": "false",
        "ADAPTER_PULL_INTERVAL_SECONDS": "0",
        "ADAPTER_LOG_LEVEL": "WARNING",
        "ADAPTER_WEB_WORKERS": "1",
        # Past the default limit of readings a document may carry: what it costs is measured.
        "ADAPTER_MAX_READINGS_PER_DOCUMENT": "10000",
    }
    command = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}/ready", timeout=30).ok:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("our service did not become ready")
        time.sleep(0.2)


def post(session: requests.Session, url: str, body: bytes) -> tuple[float, int]:
    """Seconds from sending `body` to its 201, and how many resources it stored (created,
    or found unchanged: the patient and the clinic's staff, sent before)."""
    start = time.perf_counter()
    reply = session.post(f"{url}/clinic/encounters", data=body, headers=HEADERS, timeout=600)
    elapsed = time.perf_counter() - start
    if reply.status_code != 201:
        raise SystemExit(f"expected 201, got {reply.status_code}: {reply.text[:300]}")
    receipt = reply.json()
    return elapsed, len(receipt["created"]) + len(receipt["unchanged"])


def mapped(body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    count = ours(body)
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", default="300,1000,3000", help="sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="documents posted per size")
    parser.add_argument("--database-url", help="the store (default: SQLite in a temp folder)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.readings.split(",")]
    accepted: dict[int, list[float]] = {n: [] for n in sizes}
    baseline: dict[int, list[float]] = {n: [] for n in sizes}
    facts: dict[int, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        url_of_store = args.database_url or f"sqlite:///{Path(folder) / 'adapter.db'}"
        with service(url_of_store, Path(folder)) as url, requests.Session() as session:
            post(session, url, encoded(with_readings(30, "ENC-WARM-UP")))
            for round_number in range(args.rounds):
                for n in sizes:
                    body = encoded(with_readings(n, f"ENC-L{n}-{round_number}"))
                    seconds, stored = post(session, url, body)
                    accepted[n].append(seconds)
                    map_seconds, count = mapped(body)
                    baseline[n].append(map_seconds)
                    facts[n] = (len(body), count)
                    assert stored == count, (stored, count)
    store = "PostgreSQL" if args.database_url else "SQLite"
    print(f"store: {store}; {args.rounds} documents per size; medians")
    print("readings   KB  resources  accept s/doc   res/s  map s/doc   res/s  accept/map")
    for n in sizes:
        size, count = facts[n]
        took, base = statistics.median(accepted[n]), statistics.median(baseline[n])
        print(
            f"{n:8d} {size / 1024:4.0f} {count:10d} {took:13.3f} {count / took:7.0f} "
            f"{base:10.3f} {count / base:7.0f} {took / base:10.1f}x"
        )


if __name__ == "__main__":
    main()
