"""Reads by id of a PostgreSQL store, from the event loop, on psycopg's async connections.

On SQLite a read by id runs right on the event loop (`adapter.api.fhir.route_context`). On
PostgreSQL a blocking round trip cannot: it went to a read thread, and handing it there and
back was about a fifth of a web process's interpreter time under a read load, SQLAlchemy's
execution another tenth. `KeyReads` runs the same statement (`resources.CURRENT`, compiled
once for PostgreSQL) on a small pool of async connections (`psycopg_pool`) instead: the
loop waits for the answer without a thread. At 32 connections it cut our CPU per read from
0.81 to 0.63 ms and raised the reads a second by 30 % (docs/benchmarks.md).

Its connections are its own and serve nothing else, so the read budget is their session's
`statement_timeout` from the start (`options`), in autocommit. A transaction pooler forbids
both (`?pgbouncer=true`): there `key_reads_for` gives None and reads keep the threads.

A connection that lay idle `PING_AFTER_IDLE_SECONDS` is pinged before use, as the engine's
are (`adapter.store.engine`); a read that meets a dead one fails once (503) and has the pool
check every idle connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql import psycopg as postgres_psycopg
from sqlalchemy.engine import make_url

from adapter.errors import StoreUnavailable
from adapter.store.database_url import behind_pooler
from adapter.store.engine import PING_AFTER_IDLE_SECONDS
from adapter.store.resources import CURRENT, Version

log = logging.getLogger(__name__)

# Connections per web process: reads wait on the loop, not in threads, so a few serve many.
MAX_CONNECTIONS = 16
APPLICATION_NAME = "adapter-key-reads"
_COMPILED = CURRENT.compile(dialect=postgres_psycopg.dialect())  # type: ignore[no-untyped-call]
_CURRENT_SQL = str(_COMPILED)


class KeyReads:
    """Reads of a resource's current version by (tenant, type, id), on the event loop."""

    def __init__(self, conninfo: str, budget_ms: int, connect_timeout_seconds: int) -> None:
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._checking: asyncio.Task[None] | None = None
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo,
            kwargs={
                "autocommit": True,
                "options": f"-c statement_timeout={int(budget_ms)}",
                "connect_timeout": connect_timeout_seconds,
                # What an operator sees in pg_stat_activity.
                "application_name": APPLICATION_NAME,
            },
            min_size=1,
            max_size=MAX_CONNECTIONS,
            open=False,
            check=self._ping_if_idle,
            reset=self._note_returned,
            timeout=connect_timeout_seconds,
            name="key-reads",
        )

    async def open(self) -> None:
        """Start the pool (in the running loop); a database still down is no error here:
        reads answer 503 (`StoreUnavailable`) until it answers."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        if self._checking is not None:
            await self._checking
        await self.pool.close()

    async def current(self, tenant: str, resource_type: str, logical_id: str) -> list[Version]:
        """The current version of `tenant`'s `resource_type/logical_id` (deleted or not), as a
        list of one, or none. `StoreUnavailable` (503) when the store does not answer: down,
        a dead connection, none free in time, or the statement past its budget (looked up by
        key, a read cannot ask too much: the store is overloaded)."""
        named = {"tenant": tenant, "resource_type": resource_type, "logical_id": logical_id}
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(_CURRENT_SQL, named)
                row = await cursor.fetchone()
        except psycopg.errors.QueryCanceled as exc:
            raise _unavailable("past its budget") from exc
        except PoolTimeout as exc:
            raise _unavailable("no connection free in time") from exc
        except psycopg.OperationalError as exc:
            self._check_soon()
            raise _unavailable(type(exc).__name__) from exc
        except psycopg.Error as exc:
            raise _unavailable(type(exc).__name__) from exc
        return [] if row is None else [Version(row[0], row[1], bool(row[2]), row[3])]

    def _check_soon(self) -> None:
        """A connection died: have the pool ping the idle ones (a restarted server leaves
        them all dead), once at a time."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self.pool.check())

    async def _note_returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def _ping_if_idle(self, conn: AsyncConnection[Any]) -> None:
        since = self._returned.get(conn)
        if since is not None and time.monotonic() - since >= PING_AFTER_IDLE_SECONDS:
            await conn.execute("SELECT 1")


def _unavailable(reason: str) -> StoreUnavailable:
    log.warning("store: a read by id failed (%s)", reason)
    return StoreUnavailable("the store could not be read; retry shortly")


def key_reads_for(
    database_url: str, budget_ms: int, connect_timeout_seconds: int
) -> KeyReads | None:
    """`KeyReads` for a PostgreSQL store reached directly; None for SQLite, or behind a
    transaction pooler (no session settings there)."""
    url, pooled = behind_pooler(make_url(database_url))
    if url.get_backend_name() != "postgresql" or pooled:
        return None
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return KeyReads(conninfo, budget_ms, connect_timeout_seconds)
