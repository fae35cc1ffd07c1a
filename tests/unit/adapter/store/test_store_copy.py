"""Copying a whole store into an empty database (`adapter.store.store_copy`), SQLite to
SQLite here; to PostgreSQL and back in tests/integration/test_store_copy_on_postgres.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, insert, inspect

from adapter.errors import StoreCopyRefused
from adapter.store import bulk, store_copy
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.schema import metadata, sync_state
from adapter.store.store_copy import TableCopied, copy_store
from tests.store_copies import TENANTS, fhir_answers, ingest, largest_resource_pk, row_counts
from tests.store_template import migrated_sqlite


@pytest.fixture
def source(tmp_path: Path) -> Engine:
    """A store with two tenants' typical encounters, read once through `/fhir` (audit rows)."""
    engine = create_store_engine(migrated_sqlite(tmp_path / "source.db"))
    for tenant in TENANTS:
        ingest(engine, tenant, range(3))
    fhir_answers(engine, tmp_path, TENANTS[0])
    return engine


def _sqlite(path: Path) -> Engine:
    return create_store_engine(f"sqlite:///{path}")


def test_copy_store__sqlite_to_sqlite__every_table_copied_row_for_row(
    source: Engine, tmp_path: Path
) -> None:
    target = _sqlite(tmp_path / "copy.db")
    heard: list[TableCopied] = []
    copied = copy_store(source, target, heard.append)
    counts = row_counts(source)
    assert row_counts(target) == counts
    assert {t.table: t.rows for t in copied.tables} == counts
    assert list(copied.tables) == heard
    assert [t.table for t in copied.tables] == [t.name for t in metadata.sorted_tables]
    assert all(counts[name] > 0 for name in ("resources", "resource_versions", "audit"))


def test_copy_store__sqlite_to_sqlite__fhir_answers_alike(source: Engine, tmp_path: Path) -> None:
    target = _sqlite(tmp_path / "copy.db")
    copy_store(source, target)
    for tenant in TENANTS:
        expected = fhir_answers(source, tmp_path, tenant)
        assert len(expected) > 20
        assert fhir_answers(target, tmp_path, tenant) == expected


def test_copy_store__new_ingest_into_the_copy__takes_new_ids(
    source: Engine, tmp_path: Path
) -> None:
    target = _sqlite(tmp_path / "copy.db")
    copy_store(source, target)
    before = largest_resource_pk(target)
    ingest(target, TENANTS[0], range(3, 5))
    assert largest_resource_pk(target) > before
    assert row_counts(target)["submissions"] == row_counts(source)["submissions"] + 2


def test_copy_store__target_holds_data__refused_and_left_as_it_was(
    source: Engine, tmp_path: Path
) -> None:
    target = _sqlite(tmp_path / "copy.db")
    upgrade(target)
    with write_transaction(target) as conn:
        conn.execute(
            insert(sync_state).values(tenant="t", name="n", value="v", updated_at=datetime.now(UTC))
        )
    before = row_counts(target)
    with pytest.raises(StoreCopyRefused, match="table sync_state has rows"):
        copy_store(source, target)
    assert row_counts(target) == before


def test_copy_store__source_behind_the_newest_schema__refused_naming_migrate(
    tmp_path: Path,
) -> None:
    behind = _sqlite(tmp_path / "old.db")
    upgrade(behind, "0011")
    target = _sqlite(tmp_path / "copy.db")
    with pytest.raises(StoreCopyRefused, match="adapter migrate"):
        copy_store(behind, target)
    assert inspect(target).get_table_names() == []  # not even migrated


def test_copy_store__fails_half_way__target_left_without_a_row_and_a_rerun_copies(
    source: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _sqlite(tmp_path / "copy.db")
    real = bulk.copy_rows

    def failing(conn: Connection, table: Table, *rest: Any) -> None:
        if table.name == "search_index":
            raise OSError("disk full")
        real(conn, table, *rest)

    monkeypatch.setattr(store_copy, "copy_rows", failing)
    with pytest.raises(OSError, match="disk full"):
        copy_store(source, target)
    assert set(row_counts(target).values()) == {0}

    monkeypatch.setattr(store_copy, "copy_rows", real)
    copy_store(source, target)
    assert row_counts(target) == row_counts(source)
