"""The audit trail on PostgreSQL: partitioned by month, kept ahead, old months dropped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, select, text

from adapter.store.audit_upkeep import keep_audit
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import alembic_config, upgrade
from adapter.store.schema import audit
from tests.integration.postgres_databases import database_of_its_own

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# Before the migration: three years back, last month, this month.
EARLIER = [NOW - timedelta(days=3 * 365), NOW - timedelta(days=35), NOW - timedelta(hours=1)]


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    """A database of its own, at the revision before the audit was partitioned."""
    with database_of_its_own(postgres_url, "audit") as url:
        store = create_store_engine(url)
        upgrade(store, "0011")
        try:
            yield store
        finally:
            store.dispose()


def _add(engine: Engine, *moments: datetime) -> None:
    rows = [
        {
            "at": at,
            "tenant": "t",
            "actor": "key-1",
            "action": "read",
            "object": "o",
            "outcome": "ok",
        }
        for at in moments
    ]
    with write_transaction(engine) as conn:
        conn.execute(insert(audit), rows)


def _rows(engine: Engine) -> list[tuple[int, str, datetime]]:
    with engine.connect() as conn:
        query = select(audit.c.id, audit.c.public_id, audit.c.at).order_by(audit.c.id)
        return [(r.id, r.public_id, r.at) for r in conn.execute(query)]


def _where(engine: Engine) -> dict[str, int]:
    """Rows per partition."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM audit GROUP BY 1")
        )
        return {name: count for name, count in found}


def _partitions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'audit'"
            )
        ).scalars()
        return set(names)


def _month(moment: datetime) -> str:
    return f"audit_p{moment:%Y%m}"


def test_migration__rows_kept_with_their_ids__table_partitioned_by_month(engine: Engine) -> None:
    _add(engine, *EARLIER)
    before = _rows(engine)
    upgrade(engine)
    assert _rows(engine) == before
    partitions = _partitions(engine)
    assert {"audit_pdefault", *(_month(at) for at in EARLIER)} <= partitions
    assert _where(engine) == {_month(at): 1 for at in EARLIER}
    _add(engine, datetime.now(UTC))
    assert _rows(engine)[-1][0] > before[-1][0], "the id sequence carries on"
    assert len({public for _, public, _ in _rows(engine)}) == len(EARLIER) + 1


def test_upkeep__a_month_without_partition__rows_wait_in_default_then_move(engine: Engine) -> None:
    upgrade(engine)
    later = datetime.now(UTC) + timedelta(days=400)
    _add(engine, later)  # past the months made ahead: the default partition takes it
    assert _where(engine) == {"audit_pdefault": 1}
    done = keep_audit(engine, later, retention_days=0)
    assert done.partitions_added >= 1
    assert _where(engine) == {_month(later): 1}
    assert keep_audit(engine, later, retention_days=0).partitions_added == 0


def test_upkeep__retention__older_months_dropped_older_rows_deleted_newer_kept(
    engine: Engine,
) -> None:
    _add(engine, *EARLIER)
    upgrade(engine)
    done = keep_audit(engine, NOW, retention_days=30)
    assert done.partitions_dropped >= 1
    assert _month(EARLIER[0]) not in _partitions(engine)
    kept = [at for _, _, at in _rows(engine)]
    assert kept == [EARLIER[2]]
    assert done.rows_deleted == 1  # last month's row, in a month the cut falls in
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit)).scalar_one() == 1


def test_downgrade__back_to_one_table_with_every_row(engine: Engine) -> None:
    _add(engine, *EARLIER)
    upgrade(engine)
    before = _rows(engine)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    assert _rows(engine) == before
    assert _partitions(engine) == set()
