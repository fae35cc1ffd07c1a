"""The endpoint guard and the sender's caps: what a subscription may call, and how."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapter.errors import EndpointRefused
from adapter.notify.guard import allowed_hosts, check_endpoint
from adapter.notify.sender import MAX_ANSWER_BYTES, Sender, retry_after


def resolving_to(*addresses: str) -> Any:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.2.3.4", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "::1", "fe80::1", "fd00::5", "::ffff:10.0.0.1", "0.0.0.0", "224.0.0.1"],
)  # fmt: skip
def test_endpoint__a_name_resolving_to_a_private_address__refused(address: str) -> None:
    with pytest.raises(EndpointRefused, match="private"):
        check_endpoint("https://receiver.example/hook", frozenset(), resolving_to(address))


def test_endpoint__any_one_address_private__refused() -> None:
    resolver = resolving_to("93.184.216.34", "10.0.0.1")
    with pytest.raises(EndpointRefused):
        check_endpoint("https://receiver.example/hook", frozenset(), resolver)


def test_endpoint__public_https__allowed() -> None:
    check_endpoint("https://receiver.example/hook", frozenset(), resolving_to("93.184.216.34"))


def test_endpoint__listed_host__allowed_over_http_and_private() -> None:
    listed = allowed_hosts(" Receiver.Internal , 127.0.0.1")
    check_endpoint("http://receiver.internal:8080/hook", listed, resolving_to("10.0.0.1"))
    check_endpoint("http://127.0.0.1:9/hook", listed, resolving_to("127.0.0.1"))


def test_endpoint__unresolvable__refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(EndpointRefused, match="does not resolve"):
        check_endpoint("https://nowhere.example/hook", frozenset(), fails)


def test_retry_after__seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert retry_after("120", now) == 120.0
    assert retry_after("Sun, 06 Dec 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


class _Answers(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"x" * (MAX_ANSWER_BYTES * 16))  # no length: read until closed

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def answering() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sender__redirect__a_failure_never_followed(answering: str) -> None:
    outcome = Sender(allowed_hosts("127.0.0.1")).post(f"{answering}/redirect", (), b"{}", 5)
    assert not outcome.ok
    assert outcome.error.startswith("ReceiverRedirected")


def test_sender__a_huge_answer__read_only_up_to_the_cap(answering: str) -> None:
    outcome = Sender(allowed_hosts("127.0.0.1")).post(f"{answering}/big", (), b"{}", 5)
    assert outcome.ok


def test_sender__endpoint_not_listed__refused_before_any_connection(answering: str) -> None:
    outcome = Sender(frozenset()).post(f"{answering}/hook", (), b"{}", 5)
    assert not outcome.ok
    assert outcome.error.startswith("EndpointRefused")


def test_sender__a_lookup_that_hangs__fails_within_the_timeout() -> None:
    release = threading.Event()

    def hangs(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["93.184.216.34"]

    try:
        started = time.monotonic()
        outcome = Sender(frozenset(), hangs).post("https://slow.example/hook", (), b"{}", 0.5)
        assert time.monotonic() - started < 5
        assert not outcome.ok
        assert outcome.error.startswith("EndpointRefused")
    finally:
        release.set()
