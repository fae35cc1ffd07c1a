"""Benchmark: what the audit trail costs a request, against the same app without it.

Run alone: `.venv/bin/python bench/audit_overhead.py [--requests 2000] [--rounds 3]`.

Two copies of the service on real uvicorn servers on loopback, each on a SQLite store of its
own holding one accepted encounter: `audited` as `create_app` builds it, and `bare`, the
same app with the `AuditTrail` middleware taken out before it first runs (the baseline).
One client connection sends `GET /fhir/Patient/<id>` (a read: the audit's whole work is a
queue put, plus counting a Bundle's entries where the answer is one) to each in turn,
interleaved in rounds so both meet the machine in the same state. Printed: requests per
second and median/p99 latency of each, and the ratio; then that every audited request was
written (the writer kept up).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapter.api.app import create_app  # noqa: E402
from adapter.api.middleware.audit import AuditTrail  # noqa: E402
from adapter.config import Settings  # noqa: E402
from adapter.store.schema import audit  # noqa: E402

KEY = "bench-key-0123456789abcdef0123456789"
EXAMPLE = ROOT / "examples" / "typical-ketamine-infusion.json"


def _app(folder: Path, audited: bool) -> FastAPI:
    keys = folder / "keys.json"
    keys.write_text(json.dumps([{"key": KEY, "tenant": "bench", "scopes": ["clinic/*.*"]}]))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'adapter.db'}",
        ehr_base_url="",
        run_worker=False,
        api_keys_file=str(keys),
        log_level="WARNING",
    )
    app = create_app(settings)
    if not audited:
        app.user_middleware = [
            m for m in app.user_middleware if getattr(m, "cls", None) is not AuditTrail
        ]
    return app


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    assert app.state.background.migrated.wait(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _patient(session: requests.Session, url: str) -> str:
    reply = session.post(
        f"{url}/clinic/encounters",
        data=EXAMPLE.read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    reply.raise_for_status()
    return str(next(ref for ref in reply.json()["created"] if ref.startswith("Patient/")))


def _timed(session: requests.Session, url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        reply = session.get(url, timeout=10)
        latencies.append(time.perf_counter() - start)
        assert reply.status_code == 200
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per copy and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        apps = {}
        for name in ("bare", "audited"):
            (Path(tmp) / name).mkdir()
            apps[name] = _app(Path(tmp) / name, audited=name == "audited")
        with _served(apps["bare"]) as bare_url, _served(apps["audited"]) as audited_url:
            urls = {"bare": bare_url, "audited": audited_url}
            sessions = {name: requests.Session() for name in urls}
            for name, session in sessions.items():
                session.headers["Authorization"] = f"Bearer {KEY}"
                urls[name] = f"{urls[name]}/fhir/{_patient(session, urls[name])}"
                _timed(session, urls[name], 200)  # warm up
            latencies: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(args.rounds):
                for name in urls:
                    latencies[name] += _timed(sessions[name], urls[name], args.requests)
            writer = apps["audited"].state.audit_writer
            assert writer.flush(30)
            with apps["audited"].state.engine.connect() as connection:
                written = connection.execute(select(func.count()).select_from(audit)).scalar()
    rates = {}
    for name, values in latencies.items():
        rates[name] = len(values) / sum(values)
        p99 = statistics.quantiles(values, n=100)[98]
        print(
            f"{name:8} {rates[name]:8.0f} req/s  median {statistics.median(values) * 1000:.2f} ms"
            f"  p99 {p99 * 1000:.2f} ms  ({len(values)} reads)"
        )
    print(f"audited/bare throughput: {rates['audited'] / rates['bare']:.3f}")
    expected = 1 + 200 + args.rounds * args.requests
    print(f"audit rows written: {written} of {expected} audited requests, dropped {writer.dropped}")


if __name__ == "__main__":
    main()
