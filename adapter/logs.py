"""Logging setup for the service: one format, the configured level.

What is logged is ids, counts, statuses and error classes; never names, values or any other
clinical content (see architecture.md).
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "adapter_request_id", default=None
)
"""The id of the HTTP request being handled (`X-Request-Id`), set by the audit middleware."""


def configure_logging(level: str, log_format: str = "text") -> None:
    if log_format == "json":
        use_json_lines()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("adapter").setLevel(level)


def use_json_lines() -> None:
    """Every log line one JSON object (`ADAPTER_LOG_FORMAT=json`, for log shippers): time,
    level, logger, message and the request id (`null` outside a request)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        if record.exc_info:
            # The exception's class only: its message may carry a statement's parameters.
            line["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(line)
