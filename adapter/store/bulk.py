"""Many rows into one table at the driver's speed, converted as SQLAlchemy would convert them.

`conn.execute(insert(table), rows)` builds and converts every row's parameters in Python
(several microseconds a row): on the pull, which writes thousands of rows a page, that was
a large part of its CPU. Here the statement is compiled once per dialect, table and
columns, each column's own bind conversion is taken from its type (SQLite stores a
datetime as text, a boolean as 0/1; PostgreSQL's driver takes them as they are), and the
rows go to the driver's `executemany` as they are. What is stored is the same.

Only SQLAlchemy's public API is used: `TypeEngine.dialect_impl()` and
`TypeEngine.bind_processor()` (the "Base Type API"; the dialect's own type object they
return is private to the dialect, but is only called, never subclassed or named), the
compiler's documented `binds`, `Dialect.positional` and the dialect's `identifier_preparer`.

On PostgreSQL even a pipelined `executemany` is one statement a row (about 0.1 ms each:
seconds for a large document's 100,000 index rows); there the rows go as one array a
column, unpacked by the server (`INSERT ... SELECT * FROM unnest(...)`), a few
statements in all. `copy_rows` goes further, through `COPY ... FROM STDIN`, for a whole
store's rows (`adapter.store.store_copy`): an array's text is escaped in Python, value by
value, which is slow for long texts such as a resource's JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Prepared:
    sql: str
    converts: tuple[tuple[int, Processor], ...]
    """(position, conversion) of the columns whose values the driver cannot take as they are."""
    names: tuple[str, ...] | None
    """The bind names in column order, for a driver that takes named parameters; None when
    it takes them by position."""
    arrays: bool = False
    """`sql` takes one array a column (`names` its bind names), not one row."""


# Rows per statement when they go as arrays: bounds the memory of one statement.
ARRAY_ROWS = 10_000


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
    if prepared.arrays:
        assert prepared.names is not None
        for start in range(0, len(rows), ARRAY_ROWS):
            columns_of = zip(*rows[start : start + ARRAY_ROWS], strict=True)
            arrays = [list(column) for column in columns_of]
            conn.exec_driver_sql(prepared.sql, dict(zip(prepared.names, arrays, strict=True)))
    elif prepared.names is None:
        conn.exec_driver_sql(prepared.sql, list(rows))
    else:
        names = prepared.names
        conn.exec_driver_sql(prepared.sql, [dict(zip(names, row, strict=True)) for row in rows])


def copy_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """`insert_many`, but on PostgreSQL through `COPY ... FROM STDIN`: the fastest way in for
    rows of long texts (a store's copy, `adapter.store.store_copy`), whose escaping is the
    driver's C code instead of Python's, as in an array's text (`_unnest`)."""
    if conn.dialect.name != "postgresql":
        insert_many(conn, table, columns, rows)
        return
    if not rows:
        return
    prepared = _prepare(conn.dialect, table, columns)
    if prepared.converts:
        rows = _converted(rows, prepared.converts)
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in columns)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    # psycopg's own connection under `conn`, inside the same transaction.
    driver = conn.connection.driver_connection
    assert driver is not None  # an open Connection always has one
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


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
        convert = _bind_conversion(table.c[name].type, dialect)
        if convert is not None:
            converts.append((position, convert))
    if dialect.name == "postgresql":
        return _unnest(dialect, table, columns, tuple(converts))
    names = None if dialect.positional else tuple(compiled.binds[c].key for c in columns)
    return _Prepared(str(compiled), tuple(converts), names)


def _bind_conversion(column_type: TypeEngine[Any], dialect: Dialect) -> Processor | None:
    """What SQLAlchemy does to a value of `column_type` before `dialect`'s driver gets it
    (None: nothing), through the public type API: the dialect's implementation of the type,
    and its bind processor."""
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def _unnest(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    converts: tuple[tuple[int, Processor], ...],
) -> _Prepared:
    """`INSERT INTO t (a, b) SELECT c0, c1 FROM unnest(%(c0)s::A[], %(c1)s::B[]) WITH
    ORDINALITY AS u (c0, c1, n) ORDER BY n`: each column's values as one array of the
    column's own type, inserted (and numbered) in the order given."""
    quote = dialect.identifier_preparer.quote
    names = tuple(f"c{position}" for position in range(len(columns)))
    arrays = ", ".join(
        f"%({name})s::{table.c[column].type.compile(dialect=dialect)}[]"
        for name, column in zip(names, columns, strict=True)
    )
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(c) for c in columns)}) SELECT {', '.join(names)} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS u ({', '.join(names)}, n) ORDER BY n"
    )
    return _Prepared(sql, converts, names, arrays=True)
