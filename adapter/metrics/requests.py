"""`RequestMetrics`: counts and times every HTTP request by its route template (pure ASGI).

The label is the template (`/fhir/{resource_type}/{id}`), never the path: a path carries
ids. A request no route matched is counted under `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.metrics.series import series

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, audit_depth: Callable[[], int]) -> None:
        self.app = app
        self.audit_depth = audit_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = str(scope["method"])
            measured = series()
            measured.requests.labels(method, route, str(status)).inc()
            measured.request_seconds.labels(method, route).observe(time.perf_counter() - started)
            measured.audit_queue.set(self.audit_depth())
