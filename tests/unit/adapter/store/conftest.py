"""A migrated store on SQLite (a temp file) and, as integration tests, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from tests.store_template import migrated_sqlite


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = migrated_sqlite(tmp_path / "store.db")
    else:
        url = request.getfixturevalue("postgres_url")
    made = create_store_engine(url)
    upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def tenant(request: pytest.FixtureRequest) -> str:
    """A tenant of its own per test, so tests sharing one PostgreSQL never see each other."""
    return f"t-{abs(hash(request.node.nodeid)) % 10**12}"
