"""A PostgreSQL database of a test's own, on the test server (`ADAPTER_TEST_POSTGRES_URL`):
made empty, dropped after, so tests sharing the server never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def database_of_its_own(postgres_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database named `<prefix>_<random>` beside `postgres_url`'s: its URL;
    dropped (its connections closed) when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
