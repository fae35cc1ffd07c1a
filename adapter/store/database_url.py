"""What `ADAPTER_DATABASE_URL` may say: a SQLite or PostgreSQL URL whose driver is installed,
and our `pgbouncer` parameter.

The settings (`adapter.config`) validate the URL with `usable_database_url`, the engine
(`adapter.store.engine`) reads the pooler's parameter with `behind_pooler`, and `adapter map`
asks `store_exists` before it reads a store; so SQLAlchemy's URL parsing stays in the store.
This module imports nothing of the adapter: the settings import it, and the engine imports
the settings.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

# `postgres://` and `postgresql://` (no driver named) mean PostgreSQL through psycopg 3.
POSTGRES_WITHOUT_DRIVER = frozenset({"postgres", "postgresql"})
POSTGRES_DRIVER = "postgresql+psycopg"
_DATABASE_URL_FORMS = "sqlite:///./adapter.db or postgresql+psycopg://user:password@host:5432/name"
POOLER_PARAMETER = "pgbouncer"
POOLER_VALUES = {"true": True, "false": False}


def behind_pooler(url: URL) -> tuple[URL, bool]:
    """The URL without our `pgbouncer` parameter, and whether it said `true`.

    `?pgbouncer=true` on a PostgreSQL URL says that the URL points at a pooler in
    transaction mode (PgBouncer's `pool_mode = transaction`): each transaction may run on
    another server session, so nothing may be kept on one. The store keeps nothing there but
    prepared statements (with it, none are made); everything else it sets is `SET LOCAL`.
    """
    value = url.query.get(POOLER_PARAMETER)
    if value is None:
        return url, False
    if not isinstance(value, str) or value.lower() not in POOLER_VALUES:
        raise ValueError(f"{POOLER_PARAMETER} must be true or false")
    return url.difference_update_query([POOLER_PARAMETER]), POOLER_VALUES[value.lower()]


def usable_database_url(value: str) -> str:
    """`value` stripped, with a PostgreSQL URL that names no driver given psycopg's; a
    `ValueError` saying what to write instead when the store cannot run on it."""
    value = value.strip()
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL; use e.g. {_DATABASE_URL_FORMS}") from None
    if url.drivername in POSTGRES_WITHOUT_DRIVER:
        # What hosting providers hand out; psycopg (3) is the driver we install.
        url = url.set(drivername=POSTGRES_DRIVER)
        value = url.render_as_string(hide_password=False)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"the store runs on SQLite or PostgreSQL; use {_DATABASE_URL_FORMS}")
    url, pooled = behind_pooler(url)
    if pooled and url.get_backend_name() != "postgresql":
        raise ValueError(f"{POOLER_PARAMETER}=true is for a PostgreSQL URL only")
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ValueError(
            f"the database driver {url.get_driver_name()!r} is not installed here; use "
            f"{_DATABASE_URL_FORMS} (psycopg comes with the postgres extra)"
        ) from None
    return value


def shown_database_url(database_url: str) -> str:
    """`database_url` as it may be printed: its password hidden."""
    return make_url(database_url).render_as_string(hide_password=True)


def store_exists(database_url: str) -> bool:
    """False for a SQLite store whose file is missing (or in memory); True for any other
    (a server's database is there to be asked)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return True
    return url.database not in (None, "", ":memory:") and Path(str(url.database)).is_file()
