"""gunicorn's uvicorn worker with our coalescing HTTP protocol, for `bench/read_throughput.py
--peer gunicorn --gunicorn-worker coalescing_worker.CoalescingUvicornWorker`: it separates
what the protocol gives from what the supervisor and its sockets give (issue 16)."""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker

from adapter.commands.http_protocol import CoalescingHttpTools


class CoalescingUvicornWorker(UvicornWorker):  # type: ignore[misc]  # untyped base
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": CoalescingHttpTools}
