"""Many rows into one table at the driver's speed, converted as SQLAlchemy would convert them.

`conn.execute(insert(table), rows)` builds and converts every row's parameters in Python
(several microseconds a row): on the pull, which writes thousands of rows a page, that was
a large part of its CPU. Here the statement is compiled once per dialect, table and
columns, each column's own bind conversion is taken from its type (SQLite stores a
datetime as text, a boolean as 0/1; PostgreSQL's driver takes them as they are), and the
rows go to the driver's `executemany` as they are. What is stored is the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Prepared:
    sql: str
    converts: tuple[tuple[int, Processor], ...]
    """(position, conversion) of the columns whose values the driver cannot take as they are."""
    names: tuple[str, ...] | None
    """The bind names in column order, for a driver that takes named parameters; None when
    it takes them by position."""


def insert_many(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (values in the order of `columns`, which must be the table's order)
    into `table`, in one `executemany`."""
    if not rows:
        return
    prepared = _prepare(conn.dialect, table, columns)
    if prepared.converts:
        rows = _converted(rows, prepared.converts)
    if prepared.names is None:
        conn.exec_driver_sql(prepared.sql, list(rows))
    else:
        names = prepared.names
        conn.exec_driver_sql(prepared.sql, [dict(zip(names, row, strict=True)) for row in rows])


def _converted(
    rows: Sequence[tuple[Any, ...]], converts: tuple[tuple[int, Processor], ...]
) -> list[tuple[Any, ...]]:
    # The same object in many rows (the transaction's `now`) is converted once; by identity,
    # as equal datetimes in two time zones convert to two texts.
    plan: list[tuple[int, Processor, dict[int, Any]]] = [(p, c, {}) for p, c in converts]
    done = []
    for row in rows:
        values = None
        for position, convert, seen in plan:
            value = row[position]
            if value is not None:
                if values is None:
                    values = list(row)
                key = id(value)
                if key not in seen:
                    seen[key] = convert(value)
                values[position] = seen[key]
        # Most rows hold None where a conversion would be (an index row's dates): as they are.
        done.append(row if values is None else tuple(values))
    return done


# Keyed by the dialect object: a few engines in a process, but tests make many.
@functools.lru_cache(maxsize=64)
def _prepare(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Prepared:
    # SQLAlchemy binds an insert's columns in the table's order, whatever the order asked.
    if tuple(c.name for c in table.columns if c.name in columns) != columns:
        raise ValueError(f"{table.name}: columns {columns} are not all in the table's order")
    compiled = insert(table).compile(
        dialect=dialect, column_keys=list(columns), for_executemany=True
    )
    converts = []
    for position, name in enumerate(columns):
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converts.append((position, convert))
    names = None if compiled.positional else tuple(compiled.binds[c].key for c in columns)
    return _Prepared(str(compiled), tuple(converts), names)
