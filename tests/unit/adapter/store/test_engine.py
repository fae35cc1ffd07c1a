"""The store engine: lazy, pingable, and with a connect timeout for each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from adapter.store.engine import _connect_args, create_store_engine, ping


def test_ping__sqlite_file__answers(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.db'}")
    ping(engine)
    engine.dispose()


def test_create_store_engine__unreachable_database__made_without_connecting(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'missing' / 'a.db'}")
    with pytest.raises(OperationalError):
        ping(engine)
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./a.db", {"timeout": 5}),
        ("postgresql+psycopg://u@h/db", {"connect_timeout": 5}),
        ("mysql://u@h/db", {}),
    ],
)
def test_connect_args__each_backend__its_own_timeout_argument(
    url: str, expected: dict[str, object]
) -> None:
    assert _connect_args(url, 5) == expected


def test_create_store_engine__sqlite__wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        }
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
