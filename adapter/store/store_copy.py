"""Copying a whole store into another, empty database (`adapter copy-store`): a clinic that
outgrows SQLite moves to PostgreSQL, or the other way round, with every id kept.

`copy_store(source, target)`:
1. refuses a source that is not at the newest schema (`adapter migrate` brings it there),
   and a target whose tables of ours hold any row, before writing anything;
2. migrates the target to the newest schema (its `alembic_version` comes from there, so
   that table is never copied);
3. copies every table of `adapter.store.schema.metadata` in foreign-key order, in batches of
   `BATCH` rows read from a streamed result (a server-side cursor on PostgreSQL), so memory
   holds one batch, never a table; primary keys are kept. Into PostgreSQL the rows go by
   `COPY`, and a table's plain indexes (those backing no constraint) are dropped before its
   rows and made again after, which is faster than keeping them up to date row by row;
4. on PostgreSQL, sets each table's id sequence past the largest id copied, so the next
   insert takes a new one; the audit table's month partitions (migration 0012) are made
   from the source's oldest row's month on, before its rows go in; and at the end every
   table is analysed, so the first queries are planned for the store's real size.

The rows are written in one transaction: a failure leaves the target migrated but without a
row, so the same copy can simply run again.
They are read in one transaction too (`REPEATABLE READ` on PostgreSQL): one snapshot of the
source, even if something writes to it meanwhile (stop the service first all the same).
Datetimes are copied as UTC (SQLite keeps them without a zone, and they are UTC there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, Table, func, inspect, select, text

from adapter.errors import StoreCopyRefused
from adapter.store.audit_upkeep import make_room_for_audit
from adapter.store.bulk import copy_rows
from adapter.store.engine import write_transaction
from adapter.store.migrate import current_revision, head_revision, upgrade
from adapter.store.schema import audit, metadata
from adapter.store.upkeep import utc_now

BATCH = 5_000
"""Rows read and written at a time: bounds the memory the copy takes."""


@dataclass(frozen=True)
class TableCopied:
    table: str
    rows: int


@dataclass(frozen=True)
class StoreCopied:
    tables: tuple[TableCopied, ...]
    seconds: float


def copy_store(
    source: Engine, target: Engine, on_table: Callable[[TableCopied], None] | None = None
) -> StoreCopied:
    """Copy every row of `source`'s store into `target` (empty; migrated here); `on_table`
    hears of each table when it is done."""
    start = time.perf_counter()
    _require_newest(source)
    _require_empty(target)
    upgrade(target)
    copied: list[TableCopied] = []
    with source.connect() as reading, write_transaction(target) as writing:
        if source.dialect.name == "postgresql":
            reading.execution_options(isolation_level="REPEATABLE READ")
        with reading.begin():
            _require_no_rows(writing)  # again, inside the transaction that writes
            make_room_for_audit(writing, _oldest_audit(reading), utc_now())
            for table in metadata.sorted_tables:
                copied.append(TableCopied(table.name, _copy_table(reading, writing, table)))
                if on_table is not None:
                    on_table(copied[-1])
            _advance_sequences(writing)
            _analyze(writing)
    return StoreCopied(tuple(copied), time.perf_counter() - start)


def _require_newest(source: Engine) -> None:
    newest = head_revision()
    found = current_revision(source)
    if found is None:
        raise StoreCopyRefused("the source holds no store of ours (no schema revision)")
    if found != newest:
        raise StoreCopyRefused(
            f"the source's schema is at revision {found}, not the newest ({newest}): run "
            "`adapter migrate` with ADAPTER_DATABASE_URL set to the source first"
        )


def _require_empty(target: Engine) -> None:
    """Refuse a target holding any row in a table of ours, before anything is written."""
    with target.connect() as conn:
        _require_no_rows(conn)


def _require_no_rows(conn: Connection) -> None:
    present = set(inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table.name in present and conn.execute(select(1).select_from(table).limit(1)).first():
            raise StoreCopyRefused(
                f"the target already holds data (table {table.name} has rows); nothing was "
                "written: copy into a new, empty database"
            )


def _oldest_audit(conn: Connection) -> datetime | None:
    oldest = conn.execute(select(func.min(audit.c.at))).scalar()
    return _utc(oldest) if isinstance(oldest, datetime) else None


def _copy_table(reading: Connection, writing: Connection, table: Table) -> int:
    """Copy `table`'s rows; on PostgreSQL its plain indexes are dropped first and made
    again after (one sort per index instead of an insert per row and index)."""
    rebuilt = _drop_plain_indexes(writing, table)
    count = _copy_rows(reading, writing, table)
    for definition in rebuilt:
        writing.execute(text(definition))
    return count


def _drop_plain_indexes(conn: Connection, table: Table) -> list[str]:
    """PostgreSQL: drop the indexes of `table` that back no constraint (primary keys and
    unique constraints stay), answering their definitions. Not on a partitioned table (the
    audit), whose index definitions would not make its partitions' again."""
    if conn.dialect.name != "postgresql":
        return []
    found = conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = :table AND t.relkind = 'r' AND pg_table_is_visible(t.oid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        ),
        {"table": table.name},
    ).all()
    preparer = conn.dialect.identifier_preparer
    for name, _ in found:
        conn.execute(text(f"DROP INDEX {preparer.quote(name)}"))
    return [definition for _, definition in found]


def _copy_rows(reading: Connection, writing: Connection, table: Table) -> int:
    order = list(table.primary_key.columns) or list(table.columns)
    statement = select(table).order_by(*order).execution_options(yield_per=BATCH)
    columns = tuple(c.name for c in table.columns)
    dates = tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime))
    count = 0
    for batch in _batches(reading, statement):
        rows = [_with_utc(tuple(row), dates) for row in batch] if dates else batch
        copy_rows(writing, table, columns, rows)
        count += len(rows)
    return count


def _batches(conn: Connection, statement: Any) -> Iterator[list[tuple[Any, ...]]]:
    for partition in conn.execute(statement).partitions():
        yield [tuple(row) for row in partition]


def _with_utc(row: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[Any, ...]:
    values = list(row)
    for position in positions:
        if isinstance(values[position], datetime):
            values[position] = _utc(values[position])
    return tuple(values)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _analyze(conn: Connection) -> None:
    """PostgreSQL: fresh statistics of every table, so the first queries on the new store
    are planned for its real size (autovacuum would take a while to get there)."""
    if conn.dialect.name == "postgresql":
        preparer = conn.dialect.identifier_preparer
        for table in metadata.sorted_tables:
            conn.execute(text(f"ANALYZE {preparer.format_table(table)}"))


def _advance_sequences(conn: Connection) -> None:
    """PostgreSQL: each serial id's sequence set to the largest id copied (the next insert
    takes the one after). SQLite needs nothing: a new row's id follows the largest there."""
    if conn.dialect.name != "postgresql":
        return
    for table in metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) != 1 or key[0].autoincrement not in (True, "auto"):
            continue
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": key[0].name},
        ).scalar()
        largest = None if sequence is None else conn.execute(select(func.max(key[0]))).scalar()
        if largest is not None:
            conn.execute(text("SELECT setval(:name, :value)"), {"name": sequence, "value": largest})
