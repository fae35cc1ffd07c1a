"""Bulk inserts at the driver's speed store what SQLAlchemy's own insert stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, delete, insert, select

from adapter.store.bulk import ARRAY_ROWS, copy_rows, insert_many
from adapter.store.schema import resources, search_index
from adapter.store.search_index import INDEX_COLUMNS

NOW = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)
ELSEWHERE = datetime(2026, 11, 24, 4, 30, tzinfo=timezone(timedelta(hours=-5)))


def _rows(tenant: str, first: int, second: int) -> list[tuple[object, ...]]:
    return [
        (first, tenant, "Observation", "code", "http://loinc.org", "8867-4", None, None),
        (first, tenant, "Observation", "date", None, None, NOW, NOW + timedelta(seconds=1)),
        (first, tenant, "Observation", "date", None, None, ELSEWHERE, NOW),
        (second, tenant, "Observation", "date", None, None, NOW, ELSEWHERE),
        (second, tenant, "Observation", "status", None, "final", None, None),
        # What COPY's text format escapes: tab, backslash, newline, carriage return.
        (second, tenant, "Observation", "code", "s", 'a\tb\\c\n"d"\r\\N', None, None),
    ]


def _stored(engine: Engine, tenant: str) -> list[tuple[object, ...]]:
    columns = [search_index.c[name] for name in INDEX_COLUMNS]
    with engine.connect() as conn:
        found = conn.execute(
            select(*columns).where(search_index.c.tenant == tenant).order_by(search_index.c.id)
        )
        return [tuple(row) for row in found]


def _resources(engine: Engine, tenant: str) -> list[int]:
    """Two bare resources for index rows to belong to (a foreign key); their keys."""
    with engine.begin() as conn:
        return [
            conn.execute(
                insert(resources).returning(resources.c.pk).values(
                    tenant=tenant, resource_type="Observation", logical_id=f"o{n}",
                    identifier_system="s", identifier_value=f"v{n}", version=1,
                    content_hash="h", content="{}", deleted=False, last_updated=NOW,
                )
            ).scalar_one()
            for n in (1, 2)
        ]  # fmt: skip


@pytest.mark.parametrize("write", [insert_many, copy_rows])
def test_insert_many_and_copy_rows__store_what_sqlalchemys_insert_stores(
    engine: Engine, tenant: str, write: Callable[..., None]
) -> None:
    rows = _rows(tenant, *_resources(engine, tenant))
    with engine.begin() as conn:
        conn.execute(insert(search_index), [dict(zip(INDEX_COLUMNS, r, strict=True)) for r in rows])
    by_sqlalchemy = _stored(engine, tenant)
    with engine.begin() as conn:
        conn.execute(delete(search_index).where(search_index.c.tenant == tenant))
        write(conn, search_index, INDEX_COLUMNS, rows)

    assert _stored(engine, tenant) == by_sqlalchemy
    assert len(by_sqlalchemy) == len(rows)


def test_insert_many__no_rows__nothing_written(engine: Engine, tenant: str) -> None:
    with engine.begin() as conn:
        insert_many(conn, search_index, INDEX_COLUMNS, [])

    assert _stored(engine, tenant) == []


def test_insert_many__columns_out_of_the_tables_order__refused(engine: Engine) -> None:
    swapped = ("tenant", "resource_pk", *INDEX_COLUMNS[2:])
    with engine.begin() as conn, pytest.raises(ValueError, match="table's order"):
        insert_many(conn, search_index, swapped, [("t", 1, "Observation", "code", None, "x")])


def test_insert_many__more_rows_than_one_statement_takes__all_stored_in_order(
    engine: Engine, tenant: str
) -> None:
    first, _ = _resources(engine, tenant)
    count = 2 * ARRAY_ROWS + 7
    rows = [(first, tenant, "Observation", "code", None, f"c{n}", None, None) for n in range(count)]
    with engine.begin() as conn:
        insert_many(conn, search_index, INDEX_COLUMNS, rows)

    assert [row[5] for row in _stored(engine, tenant)] == [f"c{n}" for n in range(count)]
