"""The test PostgreSQL started by `make test` really stores and returns rows."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration


def test_postgres__temp_table__row_written_is_read_back(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            assert connection.dialect.name == "postgresql"
            connection.execute(text("CREATE TEMP TABLE probe (id integer PRIMARY KEY, note text)"))
            connection.execute(
                text("INSERT INTO probe (id, note) VALUES (:id, :note)"),
                {"id": 1, "note": "written by the test"},
            )
            rows = connection.execute(text("SELECT id, note FROM probe")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "written by the test")]
