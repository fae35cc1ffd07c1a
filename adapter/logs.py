"""Logging setup for the service and the commands: one format (text, or JSON lines with the
request id), the configured level, and no URL that could carry an identifier, at any level.

What we log ourselves is ids, counts, statuses and error classes; never names, values or any
other clinical content (see architecture.md). The libraries below us are not so careful: at
DEBUG urllib3 logs every request line, and the EHR's search URLs carry MRNs in their query
(`Patient?identifier=...|MRN`); a requests exception names the URL it failed on. So every
record that reaches our handler has its URLs cut down first (`redact_urls`): the query
string becomes `?…`, and each path segment that may be an id (any segment with a digit, and
the one after a resource type) becomes `…`. `GET /fhir/Patient/123?identifier=x|MRN-1` is
logged as `GET /fhir/Patient/…?…`: the kind of call, never whom it was about.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HIDDEN = "…"

# An absolute URL; a request line's target (`"GET /path?query HTTP/1.1"`, urllib3 and access
# logs); any other path that has a query (`... with url: /fhir/Patient?identifier=...`).
_URLS = re.compile(
    r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+"""
    r"""|(?<=[A-Z] )/[^\s"'<>]*(?= HTTP/)"""
    r"""|(?<![\w/.-])/[^\s"'<>?]*\?[^\s"'<>]*"""
)
# `fhir`, `metadata`, `$export`, `_history`, `.well-known`: no digit, so no id.
_WORD = re.compile(r"[$_.]?[A-Za-z][A-Za-z._-]*")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "adapter_request_id", default=None
)
"""The id of the HTTP request being handled (`X-Request-Id`), set by the audit middleware."""


def configure_logging(level: str, log_format: str = "text") -> None:
    if log_format == "json":
        use_json_lines()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(known, RedactUrls) for known in handler.filters):
            handler.addFilter(RedactUrls())
    logging.getLogger("adapter").setLevel(level)


class RedactUrls(logging.Filter):
    """Rewrites each record's message (and traceback) with its URLs cut down: never drops a
    record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format: the handler reports it as usual
            return True
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_urls(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_urls(record.stack_info)
        return True


def redact_urls(text: str) -> str:
    """`text` with every URL's query and id-like path segments hidden (see the module)."""
    return _URLS.sub(lambda found: _redact_url(found.group()), text)


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL after all (a bad port): hide it whole
        return HIDDEN
    origin = ""
    if parts.scheme:
        # Never the user and password a URL may carry.
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    query = f"?{HIDDEN}" if parts.query or url.endswith("?") else ""
    return origin + _redact_path(parts.path) + query


def _redact_path(path: str) -> str:
    kept: list[str] = []
    follows_type = False
    for segment in path.split("/"):
        is_word = segment == "" or _WORD.fullmatch(segment) is not None
        # After a resource type comes its id, unless it is an operation or `_history`.
        is_id = follows_type and segment[:1] not in ("", "$", "_")
        kept.append(segment if is_word and not is_id else HIDDEN)
        follows_type = _RESOURCE_TYPE.fullmatch(segment) is not None
    return "/".join(kept)


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
