"""One write per answer: the head and body written in one loop turn leave together; large
writes and closing do not wait; a real uvicorn server answers through it unchanged."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from adapter.commands.http_protocol import FLUSH_BYTES, CoalescingHttpTools, CoalescingTransport


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


async def pair() -> tuple[asyncio.Transport, list[list[bytes]], Sink]:
    """A real loop transport over a socket pair, the `writelines` calls it gets, the peer."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    _, sink = await loop.connect_accepted_socket(Sink, theirs)
    calls: list[list[bytes]] = []
    real = transport.writelines

    def counted(chunks: Any) -> None:
        calls.append(list(chunks))
        real(chunks)

    transport.writelines = counted  # type: ignore[method-assign,assignment]
    return transport, calls, sink


async def settle(sink: Sink, size: int) -> None:
    for _ in range(200):
        if len(sink.received) >= size:
            return
        await asyncio.sleep(0.005)


def test_head_and_body_of_one_turn__one_writelines() -> None:
    async def scenario() -> tuple[list[list[bytes]], bytes]:
        transport, calls, sink = await pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        coalescing.write(b"{}")
        assert calls == []  # held until the end of this turn
        await asyncio.sleep(0)
        await settle(sink, 40)
        transport.close()
        return calls, bytes(sink.received)

    calls, received = asyncio.run(scenario())
    assert calls == [[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"]]
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"


def test_large_write__sent_at_once__flow_control_unchanged() -> None:
    async def scenario() -> int:
        transport, calls, sink = await pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"head")
        coalescing.write(b"x" * FLUSH_BYTES)
        sent_at_once = len(calls)
        await settle(sink, FLUSH_BYTES + 4)
        transport.close()
        assert bytes(sink.received) == b"head" + b"x" * FLUSH_BYTES
        return sent_at_once

    assert asyncio.run(scenario()) == 1


def test_close__sends_what_is_held_first() -> None:
    async def scenario() -> bytes:
        transport, _, sink = await pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"last words")
        coalescing.close()
        await asyncio.wait_for(sink.closed.wait(), 30)
        return bytes(sink.received)

    assert asyncio.run(scenario()) == b"last words"


@pytest.fixture
def server() -> Iterator[int]:
    app = FastAPI()

    @app.get("/size/{size}")
    def sized(size: int) -> Response:
        return Response(b"a" * size, media_type="application/octet-stream")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=CoalescingHttpTools)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield port
    running.should_exit = True
    thread.join(10)


def read_answer(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.startswith(b"content-length")).split()[1])
    while len(body) < length:
        body += conn.recv(65536)
    return head, body


def test_real_server__keep_alive_answers_small_and_large__whole(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as conn:
        for size in (2, 3 * FLUSH_BYTES, 0, 10):
            conn.sendall(f"GET /size/{size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            head, body = read_answer(conn)
            assert head.startswith(b"HTTP/1.1 200")
            assert body == b"a" * size
