"""`adapter.store.store_copy` with the real PostgreSQL: a SQLite store copied into a new
PostgreSQL database (ids kept, sequences past them, audit rows in their month partitions),
and that copy copied back into SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, text

from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.schema import audit
from adapter.store.store_copy import copy_store
from tests.integration.support import own_database
from tests.store_copies import TENANTS, fhir_answers, ingest, largest_resource_pk, row_counts
from tests.store_template import migrated_sqlite

pytestmark = pytest.mark.integration

YEARS_AGO = datetime.now(UTC) - timedelta(days=800)


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Engine]:
    """A new, empty PostgreSQL database of its own (not migrated: the copy does it)."""
    with own_database(postgres_url, "copy") as url:
        store = create_store_engine(url)
        try:
            yield store
        finally:
            store.dispose()


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Iterator[Engine]:
    """Two tenants' typical encounters, a `/fhir` read (audit rows), and audit rows of a
    month more than two years back (a partition the new database has not made yet)."""
    engine = create_store_engine(migrated_sqlite(tmp_path / "source.db"))
    for tenant in TENANTS:
        ingest(engine, tenant, range(3))
    fhir_answers(engine, tmp_path, TENANTS[0])
    old = {"tenant": TENANTS[1], "actor": "k", "action": "read", "object": "o", "outcome": "ok"}
    with write_transaction(engine) as conn:
        conn.execute(insert(audit), [old | {"at": YEARS_AGO + timedelta(hours=h)} for h in (0, 1)])
    yield engine
    engine.dispose()


def _audit_rows_by_partition(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM audit GROUP BY 1")
        ).all()
    return {name: count for name, count in rows}


def test_copy_store__sqlite_to_postgres__rows_answers_and_audit_months_alike(
    sqlite_source: Engine, postgres_store: Engine, tmp_path: Path
) -> None:
    copy_store(sqlite_source, postgres_store)
    assert row_counts(postgres_store) == row_counts(sqlite_source)
    partitions = _audit_rows_by_partition(postgres_store)
    assert "audit_pdefault" not in partitions
    assert partitions[f"audit_p{YEARS_AGO:%Y%m}"] == 2
    for tenant in TENANTS:
        expected = fhir_answers(sqlite_source, tmp_path, tenant)
        assert fhir_answers(postgres_store, tmp_path, tenant) == expected


def test_copy_store__postgres_copy__new_rows_take_ids_past_the_copied(
    sqlite_source: Engine, postgres_store: Engine, tmp_path: Path
) -> None:
    copy_store(sqlite_source, postgres_store)
    before_pk = largest_resource_pk(postgres_store)
    with postgres_store.connect() as conn:
        before_audit = conn.execute(select(func.max(audit.c.id))).scalar_one()
    ingest(postgres_store, TENANTS[0], range(3, 5))  # a collision would fail it
    fhir_answers(postgres_store, tmp_path, TENANTS[0])  # new audit rows
    assert largest_resource_pk(postgres_store) > before_pk
    with postgres_store.connect() as conn:
        assert conn.execute(select(func.max(audit.c.id))).scalar_one() > before_audit


def test_copy_store__postgres_back_to_sqlite__rows_and_answers_alike(
    sqlite_source: Engine, postgres_store: Engine, tmp_path: Path
) -> None:
    copy_store(sqlite_source, postgres_store)
    ingest(postgres_store, TENANTS[1], range(3, 4))
    back = create_store_engine(f"sqlite:///{tmp_path / 'back.db'}")
    try:
        copy_store(postgres_store, back)
        assert row_counts(back) == row_counts(postgres_store)
        for tenant in TENANTS:
            expected = fhir_answers(postgres_store, tmp_path, tenant)
            assert fhir_answers(back, tmp_path, tenant) == expected
    finally:
        back.dispose()
