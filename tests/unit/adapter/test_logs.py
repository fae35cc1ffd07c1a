"""Logs. No URL that could carry an identifier reaches a log: queries and id-like path segments are
hidden in every record our handler writes, urllib3's DEBUG request lines and tracebacks
included; other text is left as it is."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.logs import REQUEST_ID, JsonLines, RedactUrls, redact_urls

ROOT = Path(__file__).resolve().parents[3]
MRN = "SENTINEL-MRN-7731"


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        (
            f'http://127.0.0.1:8090 "GET /fhir/Patient?identifier=x%7C{MRN}&_count=2 HTTP/1.1" 200',
            'http://127.0.0.1:8090 "GET /fhir/Patient?… HTTP/1.1" 200',
        ),
        (
            'http://127.0.0.1:8090 "GET /fhir/Patient/1111/_history/2 HTTP/1.1" 200',
            'http://127.0.0.1:8090 "GET /fhir/Patient/…/_history/… HTTP/1.1" 200',
        ),
        ("PUT /fhir/Patient/Quixotewhistle HTTP/1.1", "PUT /fhir/Patient/… HTTP/1.1"),
        (
            f"https://user:secret@ehr.example:8443/fhir/Observation/$lastn?patient={MRN}",
            "https://ehr.example:8443/fhir/Observation/$lastn?…",
        ),
        (
            f"Max retries exceeded with url: /fhir/Patient?identifier={MRN} (Caused by X)",
            "Max retries exceeded with url: /fhir/Patient?… (Caused by X)",
        ),
        (f"token endpoint http://h/{MRN}/token", "token endpoint http://h/…/token"),
        ("https://ehr.example/fhir/.well-known/smart-configuration", None),
        ("http://127.0.0.1:8090/fhir/metadata", None),
        ("keys file /srv/adapter-2/keys.json not found", None),
        ("serving on 127.0.0.1:8080 (2 web process(es))", None),
        ("outbox 12: retry in 1.5s after EhrTimeout", None),
    ],
)
def test_redact_urls__hides_queries_and_ids__leaves_the_rest(text: str, logged: str | None) -> None:
    assert redact_urls(text) == (text if logged is None else logged)


def _through_filter(record: logging.LogRecord) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    assert RedactUrls().filter(record)
    return handler.format(record)


def test_filter__message_with_args__rewritten_once_formatted() -> None:
    record = logging.LogRecord(
        "urllib3.connectionpool", logging.DEBUG, __file__, 1,
        '%s://%s:%s "%s %s %s" %s %s',
        ("http", "127.0.0.1", 8090, "GET", f"/fhir/Patient?identifier={MRN}", "HTTP/1.1", 200, 9),
        None,
    )  # fmt: skip
    assert _through_filter(record) == 'http://127.0.0.1:8090 "GET /fhir/Patient?… HTTP/1.1" 200 9'


def test_filter__traceback__redacted_too() -> None:
    try:
        raise ValueError(f"failed on http://ehr.example/fhir/Patient?identifier={MRN}")
    except ValueError:
        record = logging.LogRecord(
            "adapter", logging.ERROR, __file__, 1, "push failed", (), sys.exc_info()
        )
    text = _through_filter(record)
    assert "push failed" in text
    assert "http://ehr.example/fhir/Patient?…" in text
    assert MRN not in text


# A real urllib3 request line at DEBUG, through the logging the commands configure.
REQUEST = f"""
import http.server, threading, requests
from adapter.logs import configure_logging

class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
threading.Thread(target=server.serve_forever, daemon=True).start()
configure_logging("DEBUG")
port = server.server_address[1]
url = f"http://127.0.0.1:{{port}}/fhir/Patient/{MRN}?identifier={MRN}"
requests.get(url, timeout=30).raise_for_status()
server.shutdown()
"""


def test_configured_logging__urllib3_request_line_at_debug__no_identifier() -> None:
    done = subprocess.run(
        [sys.executable, "-c", REQUEST], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "DEBUG urllib3.connectionpool: http://127.0.0.1:" in done.stderr
    assert '"GET /fhir/Patient/…?… HTTP/1.1" 200' in done.stderr
    assert MRN not in done.stderr


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
