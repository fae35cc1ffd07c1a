"""The store engine: lazy, pingable, and with a connect timeout for each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from adapter.store.database_url import behind_pooler
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


@pytest.mark.parametrize(
    ("url", "pooled"),
    [
        ("postgresql+psycopg://u@h:6432/db?pgbouncer=true", True),
        ("postgresql+psycopg://u@h:6432/db?pgbouncer=TRUE&sslmode=require", True),
        ("postgresql+psycopg://u@h:6432/db?pgbouncer=false", False),
        ("postgresql+psycopg://u@h:5432/db", False),
    ],
)
def test_behind_pooler__our_parameter__read_and_removed_others_kept(url: str, pooled: bool) -> None:
    plain, found = behind_pooler(make_url(url))
    assert found is pooled
    assert "pgbouncer" not in plain.query
    assert plain.query.get("sslmode") == make_url(url).query.get("sslmode")


def test_create_store_engine__behind_pooler__psycopg_prepares_nothing() -> None:
    engine = create_store_engine("postgresql+psycopg://u@127.0.0.1:1/db?pgbouncer=true")
    assert "pgbouncer" not in engine.url.query
    assert _pooled_connect_args(engine) == {"connect_timeout": 5, "prepare_threshold": None}


def _pooled_connect_args(engine: Engine) -> dict[str, object]:
    made: dict[str, object] = {}

    def capture(dialect: object, record: object, cargs: object, cparams: dict[str, object]) -> None:
        made.update(cparams)
        raise _Captured

    event.listen(engine, "do_connect", capture)
    with pytest.raises(_Captured):
        engine.connect()
    return {key: made[key] for key in ("connect_timeout", "prepare_threshold") if key in made}


class _Captured(Exception):
    """Stops a connection attempt once its arguments are seen."""
