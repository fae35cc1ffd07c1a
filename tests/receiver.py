"""A small real notification receiver for the subscription tests: an HTTP server on a free
loopback port, in a thread, keeping every Bundle it was sent (and the headers) in order.

`answers` scripts its replies: each request takes the next status (then 200 for good);
`delay` holds each answer that long (to kill a worker mid-delivery)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    bundle: dict[str, Any]
    headers: dict[str, str]

    @property
    def status(self) -> dict[str, Any]:
        params: dict[str, Any] = self.bundle["entry"][0]["resource"]
        return params

    @property
    def kind(self) -> str:
        return str(self._value("type"))

    @property
    def event_numbers(self) -> list[int]:
        return [
            int(part["valueString"])
            for p in self.status["parameter"]
            if p["name"] == "notification-event"
            for part in p["part"]
            if part["name"] == "event-number"
        ]

    def _value(self, name: str) -> object:
        for p in self.status["parameter"]:
            if p["name"] == name:
                return next(v for k, v in p.items() if k.startswith("value"))
        raise KeyError(name)


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_kind(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.kind == kind]

    def event_numbers(self) -> list[int]:
        return [n for r in self.of_kind("event-notification") for n in r.event_numbers]

    def wait_for(self, predicate: Any, seconds: float = 60, what: str = "notifications") -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, f"{what} did not arrive in {seconds:.0f} s"
            time.sleep(0.05)


@contextmanager
def receiver(path: str = "/hook") -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                status = state.answers.pop(0) if state.answers else 200
                if status < 300:
                    state.received.append(Received(body, dict(self.headers.items())))
            self.send_response(status)
            if status in (429, 503) and state.retry_after is not None:
                self.send_header("Retry-After", state.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
