"""The time budget of `/fhir` reads on the real PostgreSQL: `statement_timeout` for the
read's transaction only, a 422 past it, and writes never cancelled by it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.errors import TooCostly
from adapter.store import search
from adapter.store.budget import bounded_read
from adapter.store.engine import create_store_engine, write_transaction
from tests.unit.adapter.api.conftest import bearer, running

pytestmark = pytest.mark.integration

KEY = f"budget-reader-{uuid.uuid4().hex}"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_store_engine(postgres_url)
    yield engine
    engine.dispose()


def test_bounded_read__statement_past_the_budget__too_costly_at_once(engine: Engine) -> None:
    started = time.monotonic()
    with pytest.raises(TooCostly, match="200 ms"), bounded_read(engine, 200) as conn:
        conn.execute(text("SELECT pg_sleep(20)"))
    assert time.monotonic() - started < 15


def test_bounded_read__budget_lasts_for_the_read_only(engine: Engine) -> None:
    with bounded_read(engine, 250) as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "250ms"
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"


def test_write_transaction__after_a_bounded_read__not_cancelled(engine: Engine) -> None:
    with bounded_read(engine, 50) as conn:
        conn.execute(text("SELECT 1"))
    with write_transaction(engine) as conn:
        conn.execute(text("SELECT pg_sleep(0.5)"))


def test_search__past_the_budget_on_postgres__422_and_the_next_search_served(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys.json"
    tenant = f"budget-{uuid.uuid4().hex[:12]}"
    keys.write_text(json.dumps([{"key": KEY, "tenant": tenant, "scopes": ["system/*.rs"]}]))
    settings = Settings(
        database_url=postgres_url,
        ehr_base_url="",
        run_worker=False,
        api_keys_file=str(keys),
        statement_timeout_ms=200,
    )
    page = search.page

    def sleepy_page(conn: Connection, *args: Any) -> list[search.Found]:
        conn.execute(text("SELECT pg_sleep(20)"))
        return page(conn, *args)

    for client in running(create_app(settings)):
        monkeypatch.setattr(search, "page", sleepy_page)
        reply = client.get("/fhir/Observation?code=8867-4", headers=bearer(KEY))
        assert reply.status_code == 422, reply.text
        assert reply.json()["issue"][0]["code"] == "too-costly"
        monkeypatch.setattr(search, "page", page)
        reply = client.get("/fhir/Observation?code=8867-4", headers=bearer(KEY))
        assert reply.status_code == 200, reply.text
