"""`ADAPTER_LOG_FORMAT=json`: one JSON object per line, with the request id."""

from __future__ import annotations

import json
import logging

from adapter.logs import REQUEST_ID, JsonLines


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("adapter.test", logging.WARNING, __file__, 1, message, (), None)


def test_json_lines__inside_a_request__carry_its_id() -> None:
    token = REQUEST_ID.set("0123abcd")
    try:
        line = json.loads(JsonLines().format(record("outbox 7 parked")))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "0123abcd"
    assert line["level"] == "WARNING"
    assert line["logger"] == "adapter.test"
    assert line["message"] == "outbox 7 parked"


def test_json_lines__outside_a_request__request_id_null() -> None:
    assert json.loads(JsonLines().format(record("pull done")))["request_id"] is None
