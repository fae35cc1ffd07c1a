"""Ours on PostgreSQL for the read benchmark (issue 21): the SQLite store the run loaded (or
took from `--store`), copied into a PostgreSQL database by `adapter.store.store_copy`, the
code behind `adapter copy-store`; or that database kept as it is when an earlier run
already copied the same store there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, select

from adapter.errors import StoreCopyRefused
from adapter.store.database_url import shown_database_url, usable_database_url
from adapter.store.engine import StoreError, create_store_engine, ping
from adapter.store.schema import resources
from adapter.store.store_copy import copy_store


def postgres_url(database_url: str) -> str:
    """`--database-url` as the store takes it, once sure it names a PostgreSQL database that
    answers: checked before the long loading, not after."""
    try:
        url = usable_database_url(database_url)
    except ValueError as exc:
        raise SystemExit(f"--database-url: {exc}") from None
    if not url.startswith("postgresql"):
        raise SystemExit("--database-url must name a PostgreSQL database")
    engine = create_store_engine(url)
    try:
        ping(engine)
    except StoreError as exc:
        raise SystemExit(f"--database-url: cannot connect ({type(exc).__name__})") from None
    finally:
        engine.dispose()
    return url


def postgres_copy(db: Path, url: str) -> str:
    """Fill the PostgreSQL database `url` with the SQLite store `db`: copied when the
    database is empty, kept when it holds exactly `db`'s Encounters (an earlier run's copy
    of the same store); refused otherwise. Says which, and how long the copy took."""
    source = create_store_engine(f"sqlite:///{db}")
    target = create_store_engine(url)
    try:
        ours, theirs = _encounter_ids_in(source), _encounter_ids_in(target)
        if theirs == ours:
            return "kept (an earlier run's copy of the same store)"
        if theirs:
            raise SystemExit(
                f"{shown_database_url(url)} holds {len(theirs)} other Encounters: give "
                "--database-url an empty database (or the one an earlier run filled from the "
                "same --store)"
            )
        try:
            copied = copy_store(source, target)
        except StoreCopyRefused as exc:
            raise SystemExit(f"--database-url: {exc}") from None
        rows = sum(t.rows for t in copied.tables)
        return f"copied ({rows} rows) in {copied.seconds:.1f} s"
    finally:
        source.dispose()
        target.dispose()


def _encounter_ids_in(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if not inspect(conn).has_table(resources.name):
            return set()
        found = conn.execute(
            select(resources.c.logical_id).where(resources.c.resource_type == "Encounter")
        ).scalars()
        return set(found)


def encounter_ids(url: str) -> set[str]:
    """The logical ids of the Encounters the store at `url` holds (none: not migrated)."""
    engine = create_store_engine(url)
    try:
        return _encounter_ids_in(engine)
    finally:
        engine.dispose()
