"""A small HTTP proxy in front of the sandbox that can lose acknowledgements on purpose.

`FaultProxy(target)` forwards every request to `target` and relays the answer, except for
the faults queued with `lose_next_acks(count, how)`: the request IS forwarded (the sandbox
commits the write), then the reply is lost, either as a connection reset (`"reset"`) or
replaced by a 500 (`"500"`). This is the lost-acknowledgement case a retrying client must
survive without duplicating anything.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import requests

Fault = Literal["reset", "500"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.faults: deque[Fault] = deque()
        self.lost = 0
        self.forwarded = 0
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

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # quiet: bodies and URLs may carry test patients' identifiers

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers.pop("Host", None)
                fault = proxy._next_fault(self.command)
                answer = requests.request(
                    self.command, base + self.path, data=body, headers=headers, timeout=120
                )
                with proxy._lock:
                    proxy.forwarded += 1
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
