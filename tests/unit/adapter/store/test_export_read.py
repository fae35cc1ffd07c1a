"""What `$export` reads: a type's resources, in the table's own order (primary key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from adapter.ingest import ingest_encounter
from adapter.store.export_read import resources_as_of
from adapter.store.schema import resources
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.integration.support import encounters

LATER = datetime(2100, 1, 1, tzinfo=UTC)


def _ingest(engine: Engine, tenant: str, count: int) -> None:
    ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenant}", tenant=tenant)
    for sub in encounters(count):
        ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)


def test_resources_as_of__one_type__every_row_in_primary_key_order(
    engine: Engine, tenant: str
) -> None:
    _ingest(engine, tenant, 3)
    with engine.connect() as conn:
        stored = conn.execute(
            select(resources.c.pk).where(
                resources.c.tenant == tenant, resources.c.resource_type == "Observation"
            )
        ).scalars()
        expected = sorted(stored)
        read = [row.pk for row in resources_as_of(conn, tenant, "Observation", LATER)]
    assert len(expected) > 10
    assert read == expected


def test_resources_as_of__sqlite__walks_the_type_and_key_index_without_a_sort(
    engine: Engine, tenant: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    _ingest(engine, tenant, 2)
    sent: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.connect() as conn:
            list(resources_as_of(conn, tenant, "Observation", LATER))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    unchanged = sent[0]
    with engine.connect() as conn:
        plan = " | ".join(
            str(row[-1])
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + unchanged[0], unchanged[1])
        )
    assert "ix_resources_tenant_resource_type_pk" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
