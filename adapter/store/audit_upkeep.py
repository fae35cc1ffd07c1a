"""Keeping the audit trail's size in hand: month partitions ahead, old months dropped.

On PostgreSQL the audit table is partitioned by month (migration 0012): `keep_audit`
makes sure the partitions of this month and the next `MONTHS_AHEAD` exist (rows of a month
without one land in the default partition and are moved when it is made), then drops
every month partition wholly older than the retention and deletes the older rows left in
the partition the cut falls in (and in the default partition). On SQLite it deletes the
older rows in batches, each its own short transaction, so the writers are not held.

The service runs it when it starts and every `UPKEEP_SECONDS` after
(`adapter.store.upkeep`); `ADAPTER_AUDIT_RETENTION_DAYS=0` keeps every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, text

from adapter.store.engine import write_transaction
from adapter.store.schema import audit

MONTHS_AHEAD = 3
DELETE_BATCH = 10_000
_PREFIX = "audit_p"
_LOCK_KEY = 0x61756469  # "audi": this module's advisory lock


@dataclass(frozen=True)
class AuditUpkeep:
    partitions_added: int = 0
    partitions_dropped: int = 0
    rows_deleted: int = 0


def is_audit_partition(name: str | None) -> bool:
    """A month or default partition of the audit table: tables the schema does not list."""
    return name is not None and name.startswith(_PREFIX)


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of `moment`'s month."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def add_month_partitions(conn: Connection, first: datetime, now: datetime, ahead: int) -> int:
    """Month partitions from `first`'s month to `ahead` months after `now`'s (PostgreSQL,
    partitioned audit table); each new one takes over its rows from the default partition.
    Returns how many were made."""
    existing = set(_month_partitions(conn))
    last = month_start(now)
    for _ in range(ahead):
        last = next_month(last)
    made = 0
    start = month_start(first)
    while start <= last:
        name = f"{_PREFIX}{start:%Y%m}"
        if name not in existing:
            _attach_month(conn, name, start, next_month(start))
            made += 1
        start = next_month(start)
    return made


def make_room_for_audit(conn: Connection, oldest: datetime | None, now: datetime) -> int:
    """On PostgreSQL's partitioned audit table: the month partitions from `oldest`'s month
    (None: `now`'s) to `MONTHS_AHEAD` after `now`'s, so rows written next (a store's copy,
    `adapter.store.store_copy`) land in their months. Returns how many were made."""
    if conn.dialect.name != "postgresql" or not _is_partitioned(conn):
        return 0
    _one_at_a_time(conn)
    return add_month_partitions(conn, oldest or now, now, MONTHS_AHEAD)


def keep_audit(engine: Engine, now: datetime, retention_days: int) -> AuditUpkeep:
    """Partitions ahead (PostgreSQL), then rows older than `retention_days` gone (0: none)."""
    added = dropped = deleted = 0
    if engine.dialect.name == "postgresql":
        with write_transaction(engine) as conn:
            if _is_partitioned(conn):
                _one_at_a_time(conn)
                added = add_month_partitions(conn, now, now, MONTHS_AHEAD)
    if retention_days > 0:
        cutoff = now - timedelta(days=retention_days)
        if engine.dialect.name == "postgresql":
            with write_transaction(engine) as conn:
                if _is_partitioned(conn):
                    _one_at_a_time(conn)
                    dropped = _drop_months_before(conn, cutoff)
        deleted = _delete_before(engine, cutoff)
    return AuditUpkeep(added, dropped, deleted)


def _one_at_a_time(conn: Connection) -> None:
    """Instances sharing the database take turns (a lock held to the end of the
    transaction): the next one finds the partitions the first made or dropped."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _is_partitioned(conn: Connection) -> bool:
    found = conn.execute(
        text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = 'audit' AND pg_table_is_visible(c.oid)"
        )
    ).first()
    return found is not None


def _month_partitions(conn: Connection) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'audit' AND pg_table_is_visible(p.oid)"
        )
    ).scalars()
    return sorted(n for n in rows if n[len(_PREFIX) :].isdigit())


def _attach_month(conn: Connection, name: str, start: datetime, end: datetime) -> None:
    bounds = {"start": start, "end": end}
    conn.execute(text(f"CREATE TABLE {name} (LIKE audit INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    moved = "at >= :start AND at < :end"
    conn.execute(text(f"INSERT INTO {name} SELECT * FROM audit_pdefault WHERE {moved}"), bounds)
    conn.execute(text(f"DELETE FROM audit_pdefault WHERE {moved}"), bounds)
    # Attaching checks the rows against the bounds; the literals are our own timestamps.
    conn.execute(
        text(
            f"ALTER TABLE audit ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )


def _drop_months_before(conn: Connection, cutoff: datetime) -> int:
    """Drop each month partition that ends at or before `cutoff`."""
    dropped = 0
    for name in _month_partitions(conn):
        start = datetime(int(name[-6:-2]), int(name[-2:]), 1, tzinfo=UTC)
        if next_month(start) <= cutoff:
            conn.execute(text(f"DROP TABLE {name}"))
            dropped += 1
    return dropped


def _delete_before(engine: Engine, cutoff: datetime) -> int:
    """Delete rows older than `cutoff`, `DELETE_BATCH` at a time, each batch committed."""
    deleted = 0
    while True:
        with write_transaction(engine) as conn:
            batch = select(audit.c.id).where(audit.c.at < cutoff).limit(DELETE_BATCH)
            gone = delete(audit).where(audit.c.at < cutoff, audit.c.id.in_(batch))
            count = conn.execute(gone).rowcount
        deleted += count
        if count < DELETE_BATCH:
            return deleted
