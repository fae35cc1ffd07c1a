"""`adapter ingest` accepts files as the API does; `adapter outbox` shows and replays work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from adapter.cli import main
from adapter.config import get_settings
from adapter.runtime import open_store
from adapter.store import outbox as box
from adapter.store.engine import write_transaction
from adapter.store.schema import outbox
from tests.store_template import migrated_sqlite
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", migrated_sqlite(tmp_path / "store.db"))
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in EXAMPLE_NAMES:
        shutil.copy(EXAMPLES_DIR / f"{name}.json", folder)
    return folder


def test_ingest__folder__accepts_all_then_resend_changes_nothing(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(store)]) == 0
    assert "3 new, 0 changed, 0 unchanged, 0 invalid" in capsys.readouterr().err
    assert main(["ingest", str(store)]) == 0
    assert "0 new, 0 changed, 3 unchanged" in capsys.readouterr().err
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out == "pending\t3\n"


def test_ingest__invalid_file__reported_by_field_and_others_still_accepted(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = json.loads((store / "stopped-infusion.json").read_text())
    broken["vitals"][0]["heart_rate"]["value"] = 900
    (store / "stopped-infusion.json").write_text(json.dumps(broken))
    assert main(["ingest", str(store)]) == 1
    err = capsys.readouterr().err
    assert f"{store / 'stopped-infusion.json'}: vitals[0].heart_rate" in err
    assert "2 new, 0 changed, 0 unchanged, 1 invalid" in err


def test_ingest__ids_the_rules_refuse__one_line_per_id_exit_1_nothing_changed(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(store / "typical-ketamine-infusion.json")]) == 0
    moved = json.loads((store / "typical-ketamine-infusion.json").read_text())
    moved["patient"]["mrn"] = "MRN-SOMEONE-ELSE"
    (store / "moved.json").write_text(json.dumps(moved))
    capsys.readouterr()
    assert main(["ingest", str(store / "moved.json")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{store / 'moved.json'}: encounter_id: encounter ENC-2026-1120-001")
    assert err[1] == "ingest: 1 files: 0 new, 0 changed, 0 unchanged, 0 invalid, 1 refused"
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out == "pending\t1\n"  # the first document's work only


def test_outbox__dead_letter__listed_shown_and_replayed(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ingest", str(store / "esketamine-session.json")])
    engine = open_store(get_settings())
    with write_transaction(engine) as conn:
        conn.execute(update(outbox).values(state=box.DEAD, last_status=400, last_error="x"))
    engine.dispose()
    capsys.readouterr()
    assert main(["outbox", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1
    assert "\tdead\t" in listed[0]
    entry_id = listed[0].split("\t")[0]
    assert main(["outbox", "show", entry_id]) == 0
    assert "last_status: 400" in capsys.readouterr().out
    assert main(["outbox", "replay", entry_id]) == 0
    assert main(["outbox"]) == 0
    assert capsys.readouterr().out.endswith("pending\t1\n")
