"""The one place a SQLAlchemy engine is made from `ADAPTER_DATABASE_URL`, and pinged.

The engine connects lazily: making it never touches the database, so the service starts even
while the database is down and readiness reports it.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5


def create_store_engine(
    database_url: str, connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_SECONDS
) -> Engine:
    """An engine for `database_url` whose connection attempts give up after a short time."""
    return create_engine(
        database_url,
        connect_args=_connect_args(database_url, connect_timeout_seconds),
        pool_pre_ping=True,
    )


def ping(engine: Engine) -> None:
    """Open a connection and run `SELECT 1`; raises SQLAlchemy's error when that fails."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar_one()


def _connect_args(database_url: str, timeout_seconds: int) -> dict[str, object]:
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        return {"timeout": timeout_seconds}
    if backend == "postgresql":
        return {"connect_timeout": timeout_seconds}
    return {}
