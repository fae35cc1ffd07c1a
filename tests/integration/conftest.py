"""Fixtures shared by the integration tests (the services themselves: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.integration.support import migrated_store, store_url


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store of the test's own: SQLite, or the test PostgreSQL too for a test
    marked `support.ON_BOTH_STORES` (a module may define another `store`)."""
    kind = getattr(request, "param", "sqlite")
    with migrated_store(store_url(kind, request, tmp_path)) as engine:
        yield engine
