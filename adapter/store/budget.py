"""A time budget per statement of a read, so that no single request can hold the store.

`bounded_read(engine, milliseconds)` is a connection whose every statement may run that
long: on SQLite a progress handler interrupts the statement past its deadline (restarted
at each statement). Past the budget the read ends with `TooCostly` (422) and the store
goes on serving the others.

On PostgreSQL the budget is `statement_timeout`, set one of two ways:
- Directly connected (`keep_budget_in_session`), a read runs in autocommit, one round trip
  per statement, and the budget is a session setting made once per pooled connection and
  remembered in the pool's record of it. A read in a transaction would cost three more
  round trips (BEGIN, `SET LOCAL`, ROLLBACK): at 10,000 encounters they were a third of a
  search's time in our process. Any other use of that connection (a write, a bulk read)
  first resets the setting, outside its transaction, so nothing else inherits the budget;
  a connection switches at most once per change of use.
- Behind a transaction pooler no session setting may be kept (the next transaction may
  run on another server session), so the read is a transaction and `SET LOCAL` lasts for
  it only.

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
import weakref
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


# PostgreSQL engines whose reads keep their budget in the session (see the module doc).
_SESSION_BUDGET: weakref.WeakSet[Engine] = weakref.WeakSet()
# The execution option that marks a budgeted read's connection.
_BUDGETED = "adapter_budgeted_read"
# The pool record's note of the statement_timeout a connection's session holds.
_SESSION_TIMEOUT = "adapter_session_statement_timeout"


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
        if engine in _SESSION_BUDGET:
            conn.execution_options(isolation_level="AUTOCOMMIT", **{_BUDGETED: True})
            if conn.info.get(_SESSION_TIMEOUT) != milliseconds:
                conn.exec_driver_sql(f"SET statement_timeout = {int(milliseconds)}")
                conn.info[_SESSION_TIMEOUT] = milliseconds
        else:
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(milliseconds)}")
        with _too_costly_mapped(milliseconds, None):
            yield conn


def keep_budget_in_session(engine: Engine) -> None:
    """Give the PostgreSQL `engine` (connected directly, not through a transaction pooler)
    reads in autocommit with the budget kept in the session (see the module doc)."""
    _SESSION_BUDGET.add(engine)
    event.listen(engine, "begin", _lift_session_budget)


def _lift_session_budget(conn: Connection) -> None:
    """`begin` on a session-budget engine: a use other than a budgeted read first resets a
    budget the connection's session holds, in autocommit (a reset inside the transaction
    would come back if the transaction rolled back)."""
    if conn.get_execution_options().get(_BUDGETED) or conn.info.get(_SESSION_TIMEOUT) is None:
        return
    raw: Any = conn.connection.dbapi_connection
    before = raw.autocommit
    raw.autocommit = True
    try:
        conn.exec_driver_sql("RESET statement_timeout")
        del conn.info[_SESSION_TIMEOUT]
    finally:
        if not raw.closed:
            raw.autocommit = before


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
