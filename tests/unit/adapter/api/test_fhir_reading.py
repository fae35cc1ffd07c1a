"""Reads by key run on the event loop for a SQLite file, on the thread pool otherwise."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from adapter.api.fhir_reading import read_by_key


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
        return await read_by_key(engine, lambda: threading.get_ident() == loop_thread)

    assert asyncio.run(where()) is inline
    engine.dispose()
