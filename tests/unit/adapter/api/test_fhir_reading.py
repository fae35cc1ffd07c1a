"""Reads by key run on the event loop for a SQLite file, on the read threads otherwise;
searches and histories run on the read threads, never more at once than configured."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from anyio import CapacityLimiter
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from adapter.api.app import create_app
from adapter.api.fhir import search as fhir_search
from adapter.api.fhir.route_context import off_loop, read_by_key
from tests.unit.adapter.api.conftest import bearer, running, settings_for, write_keys

READER = "fhir-reader-of-clinic-a-0123456789abcdef"


@pytest.mark.parametrize(
    ("url", "inline"),
    [
        ("sqlite:///{folder}/store.db", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql+psycopg://user@127.0.0.1:1/db", False),
    ],
)
def test_read_by_key__inline_only_for_a_sqlite_file(tmp_path: Path, url: str, inline: bool) -> None:
    engine = create_engine(url.format(folder=tmp_path))

    async def where() -> bool:
        loop_thread = threading.get_ident()
        threads = CapacityLimiter(2)
        return await read_by_key(engine, lambda: threading.get_ident() == loop_thread, threads)

    assert asyncio.run(where()) is inline
    engine.dispose()


def test_off_loop__never_more_at_once_than_the_limiter_allows() -> None:
    running_now = peak = 0
    guard = threading.Lock()

    def work() -> int:
        nonlocal running_now, peak
        with guard:
            running_now += 1
            peak = max(peak, running_now)
        time.sleep(0.02)
        with guard:
            running_now -= 1
        return threading.get_ident()

    async def many() -> list[int]:
        threads = CapacityLimiter(3)
        return list(await asyncio.gather(*(off_loop(work, threads) for _ in range(12))))

    idents = asyncio.run(many())
    assert peak == 3
    assert threading.get_ident() not in idents


def test_searches__run_on_the_configured_read_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    keys_file = write_keys(keys, [{"key": READER, "tenant": "clinic-a", "scopes": ["system/*.rs"]}])
    app = create_app(settings_for(tmp_path, read_threads=2, api_keys_file=str(keys_file)))
    seen: list[str] = []
    original = fhir_search._search_type

    def spying(*args: object) -> object:
        seen.append(threading.current_thread().name)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fhir_search, "_search_type", spying)
    client: TestClient
    for client in running(app):
        reply = client.get("/fhir/Observation?_count=1", headers=bearer(READER))
        assert reply.status_code == 200, reply.text
        assert app.state.read_threads.total_tokens == 2
    assert len(seen) == 1
    assert seen[0] != threading.current_thread().name
