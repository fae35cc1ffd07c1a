"""The migrations build exactly the schema `adapter.store.schema` describes."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapter.store.audit_upkeep import is_audit_partition
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import metadata


def test_migrations__sqlite__same_tables_columns_and_indexes_as_the_schema(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == []


def _listed(name: str | None, kind: str, parents: object) -> bool:
    """What the schema describes: not the audit table's partitions (migration 0012)."""
    return not (kind == "table" and is_audit_partition(name))


@pytest.mark.integration
def test_migrations__postgresql__same_tables_columns_and_indexes_as_the_schema(
    postgres_url: str,
) -> None:
    engine = create_store_engine(postgres_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _listed})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []
