"""A small HTTP proxy in front of the sandbox: lost acknowledgements, latency, a record.

`FaultProxy(target)` forwards every request to `target` and relays the answer, except for
the faults queued with `lose_next_acks(count, how)`: the request IS forwarded (the sandbox
commits the write), then the reply is lost, either as a connection reset (`"reset"`) or
replaced by a 500 (`"500"`). This is the lost-acknowledgement case a retrying client must
survive without duplicating anything.

`FaultProxy(target, round_trip_ms=20)` holds each request and each reply for half that
time, as a network between a clinic and a hosted EHR would (this machine's kernel has no
netem). Every write is recorded in `exchanges` (method, body, when it came and when its
answer left), so a test can see which requests were with the server at the same time.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import requests

Fault = Literal["reset", "500"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass(frozen=True)
class Exchange:
    """One write relayed: its method and body, and its span on the proxy's clock."""

    method: str
    body: bytes
    started: float
    ended: float

    def overlaps(self, other: Exchange) -> bool:
        return self.started < other.ended and other.started < self.ended


@dataclass(frozen=True)
class Arrival:
    """One request as it reached the proxy; `wall` is `time.time()`, `at` monotonic."""

    method: str
    path: str
    at: float
    wall: float


@dataclass
class Refusal:
    """Answer `count` more requests of `method` whose path ends with `path_end` ourselves."""

    count: int
    method: str
    status: int
    retry_after: str | None
    path_end: str

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and method == self.method and path.endswith(self.path_end)


class FaultProxy:
    def __init__(self, target: str, *, round_trip_ms: float = 0.0, record: bool = True) -> None:
        self.target = target.rstrip("/")
        self.faults: deque[Fault] = deque()
        self.refusals: list[Refusal] = []
        self.arrivals: list[Arrival] = []
        self.lost = 0
        self.forwarded = 0
        self.exchanges: list[Exchange] = []
        self._half_trip = round_trip_ms / 2000
        self._record = record
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        path = self.target.split("/", 3)[3] if self.target.count("/") >= 3 else ""
        return f"http://{host!s}:{port}/{path}".rstrip("/")

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def lose_next_acks(self, count: int, how: Fault) -> None:
        """The next `count` POST/PUT/DELETE requests are committed but their replies lost."""
        with self._lock:
            self.faults.extend([how] * count)

    def refuse_next(
        self,
        count: int,
        method: str,
        status: int,
        *,
        retry_after: str | None = None,
        path_end: str = "",
    ) -> None:
        """The next `count` `method` requests whose path ends with `path_end` (a transaction
        is a POST to the base: `path_end=""` and `method="POST"`) get `status` from us."""
        with self._lock:
            self.refusals.append(Refusal(count, method, status, retry_after, path_end))

    def arrived(self, method: str, path_end: str = "") -> list[Arrival]:
        """The requests of `method` whose path ends with `path_end`, in arrival order."""
        with self._lock:
            return [a for a in self.arrivals if a.method == method and a.path.endswith(path_end)]

    def _arrive(self, method: str, path: str) -> Refusal | None:
        """Note the request's arrival; the refusal it gets, if one is queued for it."""
        with self._lock:
            self.arrivals.append(Arrival(method, path, time.monotonic(), time.time()))
            refusal = next((r for r in self.refusals if r.matches(method, path)), None)
            if refusal is not None:
                refusal.count -= 1
            return refusal

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            if method in ("POST", "PUT", "DELETE") and self.faults:
                self.lost += 1
                return self.faults.popleft()
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        origin = self.target.split("/", 3)
        base = "/".join(origin[:3])

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in separate writes: without this, Nagle's algorithm
                # holds the body until the client's delayed ACK, adding ~40 ms per reply.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # One upstream connection per client connection, kept alive like the client's.
                self.upstream = requests.Session()

            def finish(self) -> None:
                self.upstream.close()
                super().finish()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # quiet: bodies and URLs may carry test patients' identifiers

            def _refuse(self, refusal: Refusal) -> None:
                content = b'{"resourceType":"OperationOutcome","issue":[]}'
                self.send_response(refusal.status)
                if refusal.retry_after is not None:
                    self.send_header("Retry-After", refusal.retry_after)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _relay(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                refusal = proxy._arrive(self.command, self.path.split("?", 1)[0].rstrip("/"))
                if refusal is not None:
                    self._refuse(refusal)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers.pop("Host", None)
                fault = proxy._next_fault(self.command)
                time.sleep(proxy._half_trip)
                answer = self.upstream.request(
                    self.command, base + self.path, data=body, headers=headers, timeout=120
                )
                time.sleep(proxy._half_trip)
                with proxy._lock:
                    proxy.forwarded += 1
                    if proxy._record and self.command != "GET":
                        seen = Exchange(self.command, body or b"", started, time.monotonic())
                        proxy.exchanges.append(seen)
                if fault == "reset":
                    # SO_LINGER 0: close with RST, the way a dropped connection looks.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                status, content = answer.status_code, answer.content
                if fault == "500":
                    status, content = 500, b'{"resourceType":"OperationOutcome","issue":[]}'
                self.send_response(status)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

        return Handler


def main() -> None:
    """Run a proxy alone (for benchmarks): prints its URL, serves until terminated."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="a latency-adding proxy in front of a server")
    parser.add_argument("target", help="base URL to forward to, e.g. http://127.0.0.1:8090/fhir")
    parser.add_argument("--round-trip-ms", type=float, default=0.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FaultProxy(args.target, round_trip_ms=args.round_trip_ms, record=False) as proxy:
        print(proxy.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
