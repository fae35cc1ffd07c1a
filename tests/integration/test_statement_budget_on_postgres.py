"""The time budget of `/fhir` reads on the real PostgreSQL: `statement_timeout` for the
read only (kept in the session of a directly connected pool, reset before any other use;
`SET LOCAL` in a transaction behind a pooler), a 422 past it, and writes never cancelled
by it. And the pool's ping of connections that lay idle."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

from adapter.api.app import create_app
from adapter.api.fhir import read as fhir_read
from adapter.config import Settings
from adapter.errors import TooCostly
from adapter.store import engine as store_engine
from adapter.store import resources as store_resources
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


def test_bounded_read__direct__autocommit_and_the_budget_set_once_per_connection(
    engine: Engine,
) -> None:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(3):
        with bounded_read(engine, 300) as conn:
            conn.execute(text("SELECT 1"))
            raw: Any = conn.connection.dbapi_connection
            # No transaction open after a statement: no BEGIN before it, no ROLLBACK after.
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert statements.count("SET statement_timeout = 300") == 1
    assert statements.count("SELECT 1") == 3


def test_bounded_read__then_a_write_rolled_back__the_budget_stays_reset(engine: Engine) -> None:
    with bounded_read(engine, 250) as conn:
        conn.execute(text("SELECT 1"))
    seen: list[str] = []

    def failing_write() -> None:
        with write_transaction(engine) as conn:
            seen.append(conn.execute(text("SHOW statement_timeout")).scalar_one())
            raise RuntimeError("the write fails")

    with pytest.raises(RuntimeError):
        failing_write()
    assert seen == ["0"]
    with engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    with bounded_read(engine, 250) as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "250ms"


def test_bounded_read__behind_a_pooler__a_transaction_with_set_local(postgres_url: str) -> None:
    pooled = create_store_engine(f"{postgres_url}?pgbouncer=true")
    try:
        with bounded_read(pooled, 250) as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "250ms"
            raw: Any = conn.connection.dbapi_connection
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pooled.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        pooled.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    killer = create_store_engine(postgres_url)
    try:
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    finally:
        killer.dispose()


@pytest.mark.parametrize("idle_long", [True, False], ids=["idle", "in-steady-use"])
def test_pool__a_connection_killed__replaced(
    engine: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch, idle_long: bool
) -> None:
    """Idle past the threshold, the ping replaces it unseen; in steady use (not pinged) its
    next statement fails once, and the pool replaces it and every older connection."""
    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE_SECONDS", 0.0 if idle_long else 3600.0)
    killed = _backend_pid(engine)
    _terminate(postgres_url, killed)
    if not idle_long:
        with pytest.raises(DBAPIError) as failed:
            _backend_pid(engine)
        assert failed.value.connection_invalidated
    assert _backend_pid(engine) != killed


def test_write_transaction__after_a_bounded_read__not_cancelled(engine: Engine) -> None:
    with bounded_read(engine, 50) as conn:
        conn.execute(text("SELECT 1"))
    with write_transaction(engine) as conn:
        conn.execute(text("SELECT pg_sleep(0.5)"))


def _budget_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """A service on PostgreSQL with a 200 ms budget, a reader key of a tenant of its own."""
    keys = tmp_path / "keys.json"
    tenant = f"budget-{uuid.uuid4().hex[:12]}"
    keys.write_text(json.dumps([{"key": KEY, "tenant": tenant, "scopes": ["system/*.rs"]}]))
    return Settings(
        database_url=postgres_url,
        ehr_base_url="",
        run_worker=False,
        api_keys_file=str(keys),
        statement_timeout_ms=200,
    )


def test_search__past_the_budget_on_postgres__422_and_the_next_search_served(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _budget_settings(postgres_url, tmp_path)
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


def test_version_read__past_the_budget_on_postgres__503_and_the_next_read_served(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _budget_settings(postgres_url, tmp_path)
    versions = store_resources.versions

    def sleepy_versions(conn: Connection, *args: Any) -> list[Any]:
        conn.execute(text("SELECT pg_sleep(20)"))
        return versions(conn, *args)

    for client in running(create_app(settings)):
        monkeypatch.setattr(fhir_read, "versions", sleepy_versions)
        started = time.monotonic()
        # A version read: reads of the current version run on the event loop instead
        # (tests/integration/test_key_reads_on_postgres.py).
        reply = client.get("/fhir/Observation/nothing-here/_history/1", headers=bearer(KEY))
        assert reply.status_code == 503, reply.text
        assert time.monotonic() - started < 15
        monkeypatch.setattr(fhir_read, "versions", versions)
        reply = client.get("/fhir/Observation/nothing-here/_history/1", headers=bearer(KEY))
        assert reply.status_code == 404, reply.text
