"""The request-body limit: declared and streamed bodies over the limit get 413."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from adapter.api.middleware.body_limit import BodySizeLimit

LIMIT = 100


def _client() -> TestClient:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, max_body_bytes=LIMIT)

    @app.post("/echo-size")
    async def echo_size(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return TestClient(app)


def _chunks(total: int, size: int = 10) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def test_body_limit__body_at_limit__passes() -> None:
    reply = _client().post("/echo-size", content=b"x" * LIMIT)
    assert reply.status_code == 200
    assert reply.json() == {"size": LIMIT}


def test_body_limit__declared_length_over_limit__413_problem() -> None:
    reply = _client().post("/echo-size", content=b"x" * (LIMIT + 1))
    assert reply.status_code == 413
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 413


def test_body_limit__streamed_body_over_limit__413() -> None:
    reply = _client().post("/echo-size", content=_chunks(LIMIT * 3))
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413
