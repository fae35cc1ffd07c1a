"""Benchmark: FHIR Subscription notifications, and what they cost the push.

Needs a running sandbox (`make sandbox-start`; `SANDBOX_BASE_URL` to point elsewhere).
Run alone: `.venv/bin/python bench/subscription_latency.py [--encounters 100]
[--subscriptions 10] [--clinics 4] [--database-url URL]`.

`adapter serve` and `adapter worker` run as processes of their own, as in production, on
one store (a SQLite file in a temp folder unless --database-url); this process plays the
clinics (posting encounters to the clinic API, --clinics at a time) and the receivers (one
HTTP server on loopback, listed in ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS). Three phases, each
in a tenant of its own, so the sandbox meets fresh resources each time:

  push alone      N encounters accepted with the worker stopped; then the worker started
                  and timed until the outbox is drained: the push's throughput
  push + subs     the same with --subscriptions active subscriptions (encounter topic,
                  id-only) of the tenant: N x S notifications queued with the encounters;
                  the worker drains the outbox and delivers them at once; the push's
                  throughput again, and the notifications' throughput
  latency         the worker running, the S subscriptions active, the clinics post N
                  encounters: each notification's latency from its event's timestamp (taken
                  when the accept began, so it holds the accepting transaction too) to its
                  arrival at the receiver; p50 and p99, and notifications per second; once
                  with the worker also pushing to the sandbox, once with a worker that only
                  delivers (no EHR configured)

A first push phase warms the sandbox up and is not counted. Then the two push phases
alternate for --rounds rounds, a-b in odd rounds and b-a in even ones, so the sandbox's
drift (it grows, it warms) falls on both; the figures add the rounds up, and give each
round's difference and their median. Each phase also prints the CPU seconds of the worker
process (push and deliveries both) and of the sandbox's JVM (`SANDBOX_RUN_DIR` when that is
set), so the deliveries' own cost shows even on a shared machine: the worker's CPU per
encounter pushed, alone and beside the subscriptions.
"""

from __future__ import annotations

import argparse
import json
import os
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
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procinfo import cpu_seconds, sandbox_cpu_seconds  # noqa: E402  (bench/, beside this file)

from adapter.store import outbox as box  # noqa: E402
from adapter.store.engine import create_store_engine  # noqa: E402
from adapter.store.migrate import upgrade  # noqa: E402
from adapter.store.subscription_topics import ENCOUNTER  # noqa: E402

EXAMPLE = json.loads((ROOT / "examples" / "typical-ketamine-infusion.json").read_text())
SCOPES = ["clinic/encounters.write", "system/Subscription.*"]
KEY = "bench-subscription-key-{tenant}-0123456789abcdef"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


@dataclass
class Arrivals:
    """What the receiver took: (subscription, event number) -> seconds from event to arrival."""

    latency: dict[tuple[str, int], float] = field(default_factory=dict)
    """(subscription, event number) -> seconds from the event's timestamp to arrival."""
    after_answer: dict[tuple[str, int], float] = field(default_factory=dict)
    """The same from the clinic's 201 for the encounter (after the commit) to arrival."""
    answered: dict[str, float] = field(default_factory=dict)
    """Encounter/<id> -> when the clinic API answered 201 for it (time.time())."""
    handshakes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.latency)


@contextmanager
def receivers(arrivals: Arrivals) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            now = time.time()
            status = {p["name"]: p for p in body["entry"][0]["resource"]["parameter"]}
            sub = status["subscription"]["valueReference"]["reference"]
            with arrivals.lock:
                if status["type"]["valueCode"] == "handshake":
                    arrivals.handshakes += 1
                for p in body["entry"][0]["resource"]["parameter"]:
                    if p["name"] != "notification-event":
                        continue
                    parts = {part["name"]: part for part in p["part"]}
                    number = int(parts["event-number"]["valueString"])
                    stamp = datetime.fromisoformat(parts["timestamp"]["valueInstant"])
                    arrivals.latency.setdefault((sub, number), now - stamp.timestamp())
                    focus = parts.get("focus", {}).get("valueReference", {}).get("reference", "")
                    answer = arrivals.answered.get("Encounter/" + focus.rsplit("/", 1)[-1])
                    if answer is not None:
                        arrivals.after_answer.setdefault((sub, number), now - answer)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        running = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=sink)
    try:
        yield running
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(120)


def wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not done after {seconds:.0f} s")
        time.sleep(0.05)


def document(tenant: str, number: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(json.dumps(EXAMPLE))
    found["encounter_id"] = f"ENC-{tenant}-{number:05d}"
    found["patient"]["mrn"] = f"MRN-{tenant}-{number % 50:03d}"
    return found


def post_all(
    api: str, tenant: str, count: int, clinics: int, answered: dict[str, float] | None = None
) -> float:
    """Post `count` encounters of `tenant`, `clinics` at a time; the seconds it took.
    `answered` gets when each Encounter's 201 came back."""
    session_of = threading.local()
    retried = [0]

    def post(number: int) -> None:
        session = getattr(session_of, "s", None) or requests.Session()
        session_of.s = session
        while True:  # as a clinic does: a 503 (the store busy) is sent again after Retry-After
            reply = session.post(
                f"{api}/clinic/encounters",
                json=document(tenant, number),
                headers={"Authorization": f"Bearer {KEY.format(tenant=tenant)}"},
                timeout=120,
            )
            if reply.status_code != 503:
                break
            retried[0] += 1
            time.sleep(float(reply.headers.get("Retry-After", "1")))
        if reply.status_code != 201:
            raise SystemExit(f"clinic API answered {reply.status_code}")
        if answered is not None:
            at = time.time()
            for created in reply.json()["created"] + reply.json()["updated"]:
                if str(created).startswith("Encounter/"):
                    answered[str(created)] = at

    started = time.monotonic()
    with ThreadPoolExecutor(clinics) as pool:
        list(pool.map(post, range(count)))
    if retried[0]:
        print(f"  ({retried[0]} posts answered 503 and were sent again)", flush=True)
    return time.monotonic() - started


def subscribe(api: str, tenant: str, endpoint: str, count: int) -> None:
    for _ in range(count):
        body: dict[str, Any] = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "benchmark",
            "criteria": ENCOUNTER,
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint,
                "payload": "application/fhir+json",
            },
        }
        reply = requests.post(
            f"{api}/fhir/Subscription",
            json=body,
            headers={"Authorization": f"Bearer {KEY.format(tenant=tenant)}"},
            timeout=60,
        )
        if reply.status_code != 201:
            raise SystemExit(f"subscription refused: {reply.status_code} {reply.text}")


def done(engine: Any, tenant: str) -> int:
    with engine.connect() as conn:
        return box.counts(conn, tenant).get(box.DONE, 0)


@dataclass(frozen=True)
class Phase:
    """One push phase: its encounters, the push's seconds (the worker's start included),
    the notifications delivered and when the last arrived, and the CPU seconds the worker
    process and the sandbox's JVM used meanwhile."""

    encounters: int
    push_seconds: float
    notifications: int
    notify_seconds: float
    worker_cpu: float
    sandbox_cpu: float | None

    def line(self) -> str:
        text = f"{self.encounters} encounters pushed in {self.push_seconds:.1f} s"
        if self.notifications:
            text += (
                f"; {self.notifications} queued notifications delivered in "
                f"{self.notify_seconds:.1f} s"
            )
        text += f"; worker CPU {self.worker_cpu:.2f} s"
        if self.sandbox_cpu is not None:
            text += f", sandbox CPU {self.sandbox_cpu:.1f} s"
        return text


@dataclass
class PushPhases:
    """Runs push phases: a tenant's encounters accepted with the worker stopped (and, when
    `subscribed`, --subscriptions subscriptions of it active), then a worker started and
    timed until the tenant's outbox is drained and every notification has arrived."""

    api: str
    engine: Any
    endpoint: str
    arrivals: Arrivals
    worker: list[str]
    env: dict[str, str]
    logs: Path
    args: argparse.Namespace

    def phase(self, tenant: str, *, subscribed: bool) -> Phase:
        args = self.args
        if subscribed:
            subscribe(self.api, tenant, self.endpoint, args.subscriptions)
        post_all(self.api, tenant, args.encounters, args.clinics)
        queued = args.encounters * args.subscriptions if subscribed else 0
        wanted = self.arrivals.count() + queued
        sandbox_before = sandbox_cpu_seconds()
        started = time.monotonic()
        finished: dict[str, float] = {}
        with process(self.worker, self.env, self.logs / "worker.log") as running:
            while len(finished) < 2:  # each end timed on its own
                now = time.monotonic()
                if "push" not in finished and done(self.engine, tenant) == args.encounters:
                    finished["push"] = now - started
                if "notify" not in finished and self.arrivals.count() >= wanted:
                    finished["notify"] = now - started
                if now - started > 3600:
                    raise SystemExit(f"not done after an hour: {finished}")
                time.sleep(0.05)
            worker_cpu = cpu_seconds([running.pid])
        sandbox_after = sandbox_cpu_seconds()
        sandbox = (
            None
            if sandbox_before is None or sandbox_after is None
            else sandbox_after - sandbox_before
        )
        return Phase(
            args.encounters, finished["push"], queued, finished["notify"], worker_cpu, sandbox
        )


def report_push(alone: list[Phase], beside: list[Phase], subscriptions: int) -> None:
    """The push's throughput alone and beside the subscriptions, in all and round by round,
    and what the worker's CPU says the deliveries cost it."""

    def rate(phases: list[Phase]) -> float:
        return sum(p.encounters for p in phases) / sum(p.push_seconds for p in phases)

    def cpu_ms(phases: list[Phase]) -> float:
        return 1000 * sum(p.worker_cpu for p in phases) / sum(p.encounters for p in phases)

    slower = [
        (1 - (b.encounters / b.push_seconds) / (a.encounters / a.push_seconds)) * 100
        for a, b in zip(alone, beside, strict=True)
    ]
    print(
        f"push alone: {rate(alone):.2f} encounters/s; with {subscriptions} subscriptions: "
        f"{rate(beside):.2f} encounters/s ({(1 - rate(beside) / rate(alone)) * 100:+.1f} % "
        f"slower in all; round by round {', '.join(f'{x:+.0f}' for x in slower)} %, median "
        f"{median(slower):+.1f} %)"
    )
    notified = sum(p.notifications for p in beside)
    print(
        f"worker CPU per encounter: {cpu_ms(alone):.1f} ms alone, {cpu_ms(beside):.1f} ms with "
        f"{subscriptions} subscriptions (their deliveries: {notified} notifications, "
        f"{notified / sum(p.notify_seconds for p in beside):.0f}/s beside the push)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--clinics", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="push rounds (0: latency only)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--logs", default="", help="folder for the processes' logs (kept)")
    parser.add_argument("--log-level", default="WARNING", help="the processes' log level")
    args = parser.parse_args()
    sandbox = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8090/fhir")
    requests.get(f"{sandbox}/metadata", timeout=60).raise_for_status()
    run = uuid.uuid4().hex[:6]
    tenants = [f"b{run}-{phase}{r}" for r in range(args.rounds) for phase in "ab"]
    tenants += [f"b{run}-warm", f"b{run}-push-running", f"b{run}-no-push"]
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        logs = Path(args.logs) if args.logs else folder
        logs.mkdir(parents=True, exist_ok=True)
        database = args.database_url or f"sqlite:///{folder / 'store.db'}"
        engine = create_store_engine(database)
        upgrade(engine)
        keys = folder / "keys.json"
        keys.write_text(
            json.dumps(
                [{"key": KEY.format(tenant=t), "tenant": t, "scopes": SCOPES} for t in tenants]
            )
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | {
            "ADAPTER_DATABASE_URL": database,
            "ADAPTER_EHR_BASE_URL": sandbox,
            "ADAPTER_API_KEYS_FILE": str(keys),
            "ADAPTER_RUN_WORKER": "false",
            "ADAPTER_PULL_INTERVAL_SECONDS": "0",
            "ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS": "127.0.0.1",
            "ADAPTER_EHR_TIMEOUT_SECONDS": "120",
            "ADAPTER_LOG_LEVEL": args.log_level,
        }
        quiet = env | {"ADAPTER_EHR_BASE_URL": ""}  # a worker that only delivers
        serve = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)]
        worker = [sys.executable, "-m", "adapter.cli", "worker"]
        api = f"http://127.0.0.1:{port}"
        arrivals = Arrivals()
        alone: list[Phase] = []
        beside: list[Phase] = []
        with receivers(arrivals) as endpoint, process(serve, env, logs / "serve.log"):
            wait_for(lambda: _ready(api), 120, "the service")
            bench = PushPhases(api, engine, endpoint, arrivals, worker, env, logs, args)
            # Not counted: the sandbox's JIT and caches warm up on a first push.
            warm = bench.phase(f"b{run}-warm", subscribed=False)
            print(f"warm-up push (not counted): {warm.line()}", flush=True)
            for r in range(args.rounds):
                # a-b, then b-a: drift of the sandbox (it grows, it warms) falls on both.
                for phase in "ab" if r % 2 == 0 else "ba":
                    ran = bench.phase(f"b{run}-{phase}{r}", subscribed=phase == "b")
                    (beside if phase == "b" else alone).append(ran)
                    label = "push + subs" if phase == "b" else "push alone"
                    print(f"round {r + 1} {label}: {ran.line()}", flush=True)
            for label, worker_env in (("live, push running", env), ("live, no push", quiet)):
                live = f"b{run}-{label.split(',')[1].strip().replace(' ', '-')}"
                subscribe(api, live, endpoint, args.subscriptions)
                arrivals.latency.clear()
                arrivals.after_answer.clear()
                shaken = arrivals.handshakes + args.subscriptions
                with process(worker, worker_env, logs / "worker.log"):
                    # The worker up and delivering (its start is not the notifications' delay).
                    wait_for(lambda h=shaken: arrivals.handshakes >= h, 600, "the handshakes")
                    posting = post_all(api, live, args.encounters, args.clinics, arrivals.answered)
                    wanted = args.encounters * args.subscriptions
                    started = time.monotonic()
                    wait_for(lambda w=wanted: arrivals.count() >= w, 3600, "live notifications")
                    tail = time.monotonic() - started
                report_live(label, args, arrivals, posting, tail)
        engine.dispose()
    if args.rounds:
        report_push(alone, beside, args.subscriptions)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def report_live(
    label: str, args: argparse.Namespace, arrivals: Arrivals, posting: float, tail: float
) -> None:
    latencies = sorted(arrivals.latency.values())
    cuts = quantiles(latencies, n=100)
    committed = sorted(arrivals.after_answer.values())
    after = quantiles(committed, n=100) if len(committed) > 1 else [0.0] * 99
    print(
        f"{label}: {args.encounters} encounters posted in {posting:.1f} s by {args.clinics} "
        f"clinics; {len(latencies)} notifications, the last {tail:.1f} s after the last post; "
        f"from the event's timestamp p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} "
        f"ms, max {latencies[-1] * 1000:.0f} ms; from the clinic's 201 ({len(committed)} "
        f"matched) p50 {after[49] * 1000:.0f} ms, p99 {after[98] * 1000:.0f} ms; "
        f"{len(latencies) / (posting + tail):.0f} notifications/s over the run",
        flush=True,
    )


def _ready(api: str) -> bool:
    try:
        return requests.get(f"{api}/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
