"""`adapter copy-store`: counts printed per table, and refusals with exit status 2 that
leave the target as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.cli import main
from adapter.commands.exits import Exit
from adapter.store.engine import create_store_engine
from tests.store_copies import TENANTS, ingest, row_counts
from tests.store_template import migrated_sqlite


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ADAPTER_DATABASE_URL: a store holding one typical encounter."""
    url = migrated_sqlite(tmp_path / "source.db")
    engine = create_store_engine(url)
    ingest(engine, TENANTS[0], range(1))
    engine.dispose()
    monkeypatch.setenv("ADAPTER_DATABASE_URL", url)
    return url


def _counts(url: str) -> dict[str, int]:
    engine = create_store_engine(url)
    try:
        return row_counts(engine)
    finally:
        engine.dispose()


def test_copy_store__empty_target__prints_each_tables_count_and_the_time(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["copy-store", "--to", target]) == Exit.OK
    out = capsys.readouterr().out
    counts = _counts(source)
    assert _counts(target) == counts
    assert f"  {'resources':<28} {counts['resources']:>12,} rows\n" in out
    assert all(f"  {name} " in out for name in counts)
    assert out.endswith(" s; point ADAPTER_DATABASE_URL at the target and start the service\n")


def test_copy_store__target_holds_data__exit_2_and_target_untouched(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = migrated_sqlite(tmp_path / "other.db")
    engine = create_store_engine(target)
    ingest(engine, TENANTS[1], range(1))
    engine.dispose()
    before = (tmp_path / "other.db").read_bytes()
    assert main(["copy-store", "--to", target]) == Exit.REFUSED
    err = capsys.readouterr().err
    assert err.startswith("adapter copy-store: copy refused: the target already holds data")
    assert (tmp_path / "other.db").read_bytes() == before


def test_copy_store__from_a_missing_file__exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert main(["copy-store", "--from", missing, "--to", target]) == Exit.REFUSED
    assert "no store at sqlite:///" in capsys.readouterr().err
    assert not (tmp_path / "copy.db").exists()


def test_copy_store__to_not_a_database_url__exit_2_naming_the_option(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["copy-store", "--to", "mysql://x/y"]) == Exit.REFUSED
    assert "configuration refused: --to: the store runs on SQLite or PostgreSQL" in (
        capsys.readouterr().err
    )
