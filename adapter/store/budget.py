"""A time budget per statement of a read, so that no single request can hold the store.

`bounded_read(engine, milliseconds)` is a connection whose every statement may run that
long: on SQLite a progress handler interrupts the statement past its deadline (restarted
at each statement); on PostgreSQL `SET LOCAL statement_timeout` lasts for the read's
transaction only, so the pooled connection goes back without it. Past the budget the read
ends with `TooCostly` (422) and the store goes on serving the others.

Only reads opened here carry a budget. The push worker, the pull, ingest and the clinic
API's writes run statements of our own making, bounded by a document's size, and are never
interrupted by it.

Errors. A statement the database refuses for its size (too many SQL variables, an
expression tree too deep: what a request's parameters made) is `TooCostly` as well; only
the others (the database down, a disk error, a lock held too long) are left to the caller
as `SQLAlchemyError`, the store's outage.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from adapter.errors import TooCostly

log = logging.getLogger(__name__)

DEFAULT_STATEMENT_TIMEOUT_MS = 2000
# SQLite virtual machine steps between two looks at the clock: about 0.1 ms of work.
PROGRESS_STEPS = 1000
_DEADLINE = "adapter_statement_deadline"
# SQLite's messages for a statement too large to run, all of them a request's making.
_SQLITE_TOO_LARGE = (
    "too many sql variables",
    "too many columns",
    "expression tree is too large",
    "parser stack overflow",
    "too many terms in compound select",
    "string or blob too big",
    "like or glob pattern too complex",
    "too many arguments on function",
    "too many from clause terms",
    "at most 64 tables in a join",
)
# PostgreSQL: 54xxx program limit exceeded (statement too complex, too many arguments...).
_POSTGRES_TOO_LARGE_CLASS = "54"
_POSTGRES_QUERY_CANCELED = "57014"


class _Deadline:
    """The progress handler of one SQLite read: 1 (interrupt) once the statement's time is up."""

    def __init__(self, milliseconds: int) -> None:
        self.seconds = milliseconds / 1000
        self.until = math.inf
        self.expired = False

    def restart(self) -> None:
        self.until = time.monotonic() + self.seconds

    def __call__(self) -> int:
        if time.monotonic() > self.until:
            self.expired = True
            return 1
        return 0


@contextmanager
def bounded_read(engine: Engine, milliseconds: int) -> Iterator[Connection]:
    """A connection for one read whose every statement may run `milliseconds`; past that,
    or on a statement too large for the database, `TooCostly`."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            deadline = _Deadline(milliseconds)
            with _sqlite_budget(conn, deadline), _too_costly_mapped(milliseconds, deadline):
                yield conn
            return
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(milliseconds)}")
        with _too_costly_mapped(milliseconds, None):
            yield conn


@contextmanager
def _sqlite_budget(conn: Connection, deadline: _Deadline) -> Iterator[None]:
    raw: Any = conn.connection.dbapi_connection
    conn.info[_DEADLINE] = deadline
    raw.set_progress_handler(deadline, PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
        conn.info.pop(_DEADLINE, None)


def restart_deadline(conn: Connection, *_: object) -> None:
    """`before_cursor_execute` on SQLite engines: each statement gets the whole budget."""
    deadline = conn.info.get(_DEADLINE)
    if deadline is not None:
        deadline.restart()


def watch_statements(engine: Engine) -> None:
    """Make each statement of a `bounded_read` on the SQLite `engine` restart its deadline."""
    event.listen(engine, "before_cursor_execute", restart_deadline)


@contextmanager
def _too_costly_mapped(milliseconds: int, deadline: _Deadline | None) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        expired = deadline is not None and deadline.expired
        if expired or _sqlstate(exc) == _POSTGRES_QUERY_CANCELED:
            log.warning("store: a read ran past its %d ms statement budget", milliseconds)
            raise TooCostly(
                f"the search ran past the store's time budget of {milliseconds} ms per "
                "statement (ADAPTER_STATEMENT_TIMEOUT_MS); narrow it (fewer values, a "
                "patient or a code, a smaller _count)"
            ) from exc
        if is_too_large(exc):
            log.warning("store: a read's statement was too large (%s)", type(exc.orig).__name__)
            raise TooCostly(
                "the search is larger than the store can evaluate; use fewer parameters "
                "and fewer values per parameter"
            ) from exc
        raise


def is_too_large(exc: DBAPIError) -> bool:
    """The database refused the statement for its size: the request's doing, not an outage."""
    sqlstate = _sqlstate(exc)
    if sqlstate is not None:
        return sqlstate.startswith(_POSTGRES_TOO_LARGE_CLASS)
    message = str(exc.orig).lower()
    return any(text in message for text in _SQLITE_TOO_LARGE)


def _sqlstate(exc: DBAPIError) -> str | None:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate if isinstance(sqlstate, str) else None
