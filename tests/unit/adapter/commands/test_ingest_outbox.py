"""`adapter ingest` accepts files as the API does; `adapter outbox` shows and replays work;
`adapter push` says what still waits and why."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import select, update

from adapter.cli import main
from adapter.commands.push import waiting_line
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
    for name in EXAMPLE_NAMES[:3]:  # three documents: the counts below are of three
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


def test_ingest__more_readings_than_the_setting__that_file_invalid_naming_vitals(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER_MAX_READINGS_PER_DOCUMENT", "2")
    crowded = json.loads((store / "stopped-infusion.json").read_text())
    assert len(crowded["vitals"]) > 2
    assert main(["ingest", str(store / "stopped-infusion.json")]) == 1
    err = capsys.readouterr().err
    assert f"{store / 'stopped-infusion.json'}: vitals: at most 2 readings" in err


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


def test_push__nothing_due__delivers_nothing_and_says_what_waits_and_why(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "http://ehr.test/fhir")
    assert main(["ingest", str(store)]) == 0
    engine = open_store(get_settings())
    later = datetime.now(UTC) + timedelta(hours=1)
    with write_transaction(engine) as conn:
        ids = conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().all()
        states: list[dict[str, Any]] = [
            {"state": box.PENDING, "available_at": later},
            {"state": box.IN_FLIGHT, "lease_owner": "elsewhere", "lease_until": later},
            {"state": box.DEAD},
        ]
        for entry_id, values in zip(ids, states, strict=True):
            conn.execute(update(outbox).where(outbox.c.id == entry_id).values(**values))
    engine.dispose()
    capsys.readouterr()
    with responses.RequestsMock():  # any request to the EHR would fail the test
        assert main(["push"]) == 0
    err = capsys.readouterr().err
    assert "push: 0 delivered, 0 to retry later, 0 dead letters, 0 conflicts" in err
    assert (
        "push: waiting: 1 backing off, next due in 3600 s; 1 leased by another run; "
        "1 dead letters and 0 conflicts parked (`adapter outbox list`)"
    ) in err.replace("3599 s", "3600 s")


def test_waiting_line__empty_outbox__nothing() -> None:
    assert waiting_line(box.Waiting(), datetime.now(UTC)) == "push: waiting: nothing"


def test_waiting_line__ehr_pause_and_held_back__both_named() -> None:
    line = waiting_line(box.Waiting(held_back=4), datetime.now(UTC), paused=12.4)
    assert line == (
        "push: waiting: 4 held behind earlier entries; "
        "the EHR asked for a pause (Retry-After), 12 s more"
    )


def test_outbox__list_and_show__name_our_logical_ids__never_the_mrn_or_encounter_id(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((store / "esketamine-session.json").read_text())
    mrn, encounter_id = document["patient"]["mrn"], document["encounter_id"]
    main(["ingest", str(store / "esketamine-session.json")])
    engine = open_store(get_settings())
    with write_transaction(engine) as conn:
        answer = '{"operation_outcome": {"issue": [{"diagnostics": "quotes the record"}]}}'
        conn.execute(update(outbox).values(state=box.DEAD, outcome=answer))
        keys = conn.execute(select(outbox.c.resource_keys)).scalar_one()
    engine.dispose()
    patient = next(key for key in keys if key.startswith("Patient/"))
    encounter = next(key for key in keys if key.startswith("Encounter/"))
    capsys.readouterr()
    assert main(["outbox", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"\tencounter {encounter}\t" in listed
    assert main(["outbox", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert f"patient: {patient}\n" in shown
    assert f"encounter: {encounter}\n" in shown
    assert "outcome: kept (--answer prints it" in shown
    for text in (listed, shown):
        assert mrn not in text
        assert encounter_id not in text
        assert "quotes the record" not in text
    assert main(["outbox", "show", "1", "--answer"]) == 0
    assert "quotes the record" in capsys.readouterr().out
