"""The time budget of a read's statements, and statements too large for SQLite: `TooCostly`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from adapter.errors import TooCostly
from adapter.store.budget import bounded_read
from adapter.store.engine import create_store_engine, write_transaction

# Counts to a billion: minutes of SQLite work unless something stops it.
ENDLESS = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)
# About a million steps: well under a second, well over a 10 ms budget.
MILLION = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_store_engine(f"sqlite:///{tmp_path / 'budget.db'}")


def test_bounded_read__statement_past_the_budget__too_costly_soon(engine: Engine) -> None:
    started = time.monotonic()
    with pytest.raises(TooCostly, match="100 ms"), bounded_read(engine, 100) as conn:
        conn.execute(ENDLESS)
    assert time.monotonic() - started < 30


def test_bounded_read__each_statement_gets_the_whole_budget(engine: Engine) -> None:
    with bounded_read(engine, 1000) as conn:
        for _ in range(3):
            time.sleep(0.4)
            assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_bounded_read__after_one_too_costly__the_store_serves_the_next(engine: Engine) -> None:
    with pytest.raises(TooCostly), bounded_read(engine, 50) as conn:
        conn.execute(ENDLESS)
    with bounded_read(engine, 5000) as conn:
        assert conn.execute(MILLION).scalar_one() == 1_000_000


def test_write_transaction__has_no_read_budget(engine: Engine) -> None:
    with bounded_read(engine, 10) as conn:
        conn.execute(text("SELECT 1"))
    with write_transaction(engine) as conn:
        assert conn.execute(MILLION).scalar_one() == 1_000_000
    with engine.connect() as conn:
        assert conn.execute(MILLION).scalar_one() == 1_000_000


def test_bounded_read__too_many_sql_variables__too_costly(engine: Engine) -> None:
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        most = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    names = ",".join("?" * (most + 1))
    with pytest.raises(TooCostly, match="larger than the store"), bounded_read(engine, 5000) as c:
        c.exec_driver_sql(f"SELECT 1 WHERE 1 IN ({names})", tuple(range(most + 1)))


def test_bounded_read__expression_tree_too_deep__too_costly(engine: Engine) -> None:
    condition = " OR ".join(["1 = 2"] * 1500)
    with pytest.raises(TooCostly, match="larger than the store"), bounded_read(engine, 5000) as c:
        c.execute(text(f"SELECT 1 WHERE {condition}"))


def test_bounded_read__other_store_errors__left_to_the_caller(engine: Engine) -> None:
    with pytest.raises(OperationalError, match="no such table"), bounded_read(engine, 5000) as c:
        c.execute(text("SELECT * FROM no_such_table"))
