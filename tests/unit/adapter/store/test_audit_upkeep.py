"""Audit retention on SQLite: older rows deleted in batches, newer ones kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from adapter.store import audit_upkeep
from adapter.store.audit_upkeep import AuditUpkeep, keep_audit, month_start, next_month
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.schema import audit
from tests.store_template import migrated_sqlite

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_keep_audit__sqlite__rows_past_retention_deleted_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_upkeep, "DELETE_BATCH", 3)
    engine = create_store_engine(migrated_sqlite(tmp_path / "store.db"))
    ages = [400, 400, 400, 400, 400, 400, 400, 31, 29, 0]
    rows = [
        {
            "at": NOW - timedelta(days=d),
            "tenant": "t",
            "actor": "a",
            "action": "read",
            "object": "o",
            "outcome": "ok",
        }
        for d in ages
    ]
    with write_transaction(engine) as conn:
        conn.execute(insert(audit), rows)
    assert keep_audit(engine, NOW, retention_days=30) == AuditUpkeep(rows_deleted=8)
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(audit.c.at)).scalars())
    assert [NOW - k.replace(tzinfo=UTC) for k in kept] == [timedelta(days=29), timedelta(0)]
    assert keep_audit(engine, NOW, retention_days=0) == AuditUpkeep()
    engine.dispose()


def test_months__december_rolls_over_and_any_offset_is_read_in_utc() -> None:
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    moment = datetime.fromisoformat("2027-01-01T00:30:00+02:00")
    assert month_start(moment) == datetime(2026, 12, 1, tzinfo=UTC)
