"""The one place a SQLAlchemy engine is made from `ADAPTER_DATABASE_URL`, and pinged.

The engine connects lazily: making it never touches the database, so the service starts even
while the database is down and readiness reports it.

`Engine`, `Connection` and `StoreError` are named here for the code outside the store, which
passes engines and connections along (opened with `engine.connect()` for a read,
`write_transaction(engine)` for a write) into the store's functions without importing
SQLAlchemy (see `adapter.store`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from adapter.errors import StoreUnavailable
from adapter.store.budget import keep_budget_in_session, watch_statements
from adapter.store.database_url import behind_pooler
from adapter.store.writer_queue import WriterQueue

__all__ = [
    "Connection",
    "Engine",
    "StoreError",
    "check_connection",
    "create_store_engine",
    "is_sqlite_file",
    "ping",
    "write_transaction",
]

StoreError = SQLAlchemyError
"""Any failure of the database or of a statement, as the store's callers catch it."""

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
WRITE_OPTION = "adapter_write"
POOL_SIZE = 40
# A pooled PostgreSQL connection idle this long is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "adapter_idle_since"
POOL_OVERFLOW = 10
# Each SQLite store engine's queue for the write lock (adapter.store.writer_queue).
_WRITERS: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


def create_store_engine(
    database_url: str, connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS
) -> Engine:
    """An engine for `database_url` whose connection attempts give up after a short time.

    SQLite gets WAL (readers do not block the writer), `synchronous=FULL` (an accepted
    record survives power loss, not only a crash) and enforced foreign keys.

    The pool holds as many connections as the service has request threads (anyio's 40),
    so a busy service reuses them: an overflow connection is closed when returned, and a
    new one costs a connect (and on SQLite three pragmas) per request.

    Only a server connection can go stale, so only PostgreSQL's are pinged before use, and
    only after lying idle in the pool for `PING_AFTER_IDLE_SECONDS`: a ping before every
    use was a tenth of a search's time in our process. A connection that dies while in
    steady use fails the statement it carries (503, the store's outage) and makes the pool
    replace every connection older than that failure, as a failed ping does.
    A PostgreSQL engine not behind a transaction pooler keeps a read's time budget in the
    session (`adapter.store.budget.keep_budget_in_session`).
    """
    url, pooled = behind_pooler(make_url(database_url))
    sqlite = url.get_backend_name() == "sqlite"
    # An in-memory SQLite database lives in one connection: SQLAlchemy pools it alone.
    in_memory = sqlite and url.database in (None, "", ":memory:")
    pool = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
    connect_args = _connect_args(database_url, connect_timeout_seconds)
    if pooled:
        # psycopg prepares a statement on a server session after five uses; through a
        # transaction pooler the next transaction may run on another session, where that
        # statement is missing or, under the same name, another one.
        connect_args["prepare_threshold"] = None
    engine = create_engine(url, connect_args=connect_args, **pool)
    if not sqlite:
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect))
        if not pooled:
            keep_budget_in_session(engine)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        watch_statements(engine)
        _WRITERS[engine] = WriterQueue(connect_timeout_seconds)
    return engine


def _note_idle(_: object, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(
    dialect: Dialect, dbapi_connection: Any, record: ConnectionPoolEntry, _: object
) -> None:
    """`checkout`: ping a connection that lay idle long enough to have gone stale; a
    failed ping replaces it, and every connection older than it, with new ones."""
    since = record.info.get(_IDLE_SINCE)
    if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
        return  # new, or back in the pool a moment ago
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise InvalidatePoolError(
            f"a pooled connection failed its ping: {type(exc).__name__}"
        ) from exc


def _sqlite_pragmas(dbapi_connection: object, _: ConnectionPoolEntry) -> None:
    # pysqlite's own transaction handling starts transactions late (at the first write) and
    # would make a read-then-write unit non-atomic; we take over and BEGIN ourselves.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error.

    On SQLite it takes the write lock at BEGIN (`BEGIN IMMEDIATE`): a transaction that reads
    and then writes cannot then fail with "database is locked" half-way because another
    writer went first; it waits (up to the busy timeout) instead, after the writers of this
    process that asked before it (`adapter.store.writer_queue`). Plain reads keep using
    `engine.connect()` and never block writers (WAL).
    """
    with ExitStack() as turn:
        queue = _WRITERS.get(engine)
        if queue is not None:
            turn.enter_context(queue.turn())
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection


def ping(engine: Engine) -> None:
    """Open a connection and run `SELECT 1`; raises SQLAlchemy's error when that fails."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar_one()


def check_connection(engine: Engine, setting: str = "ADAPTER_DATABASE_URL") -> None:
    """Ping the database; `StoreUnavailable` naming `setting` (where the URL came from), the
    URL (its password hidden) and the driver's reason when it cannot be reached or refuses us.

    Only a connection attempt's message is quoted: it names host, port, user and database,
    never data, whereas a statement's error may quote its parameters.
    """
    try:
        ping(engine)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "no reason"
        where = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailable(
            f"{setting} ({where}): cannot connect: {reason}; {_advice(engine)}"
        ) from exc


def is_sqlite_file(engine: Engine) -> bool:
    """Whether the store is a SQLite file: a read by key there takes microseconds and never
    waits for a writer (WAL); an in-memory database lives in one thread's connection."""
    url = engine.url
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def _advice(engine: Engine) -> str:
    if engine.url.get_backend_name() == "sqlite":
        return "check that the file's folder exists and that we may write there"
    return "check that the server is up and that host, port, database, user and password are right"


def _connect_args(database_url: str, timeout_seconds: int) -> dict[str, object]:
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        return {"timeout": timeout_seconds}
    if backend == "postgresql":
        return {"connect_timeout": timeout_seconds}
    return {}
