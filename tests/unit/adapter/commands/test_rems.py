"""`adapter rems PATIENT_MRN SESSION`: the REMS Patient Monitoring page of a stored
esketamine session, within one tenant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.cli import main
from mappings.care import REMS_ITEMS, RemsItem
from tests.store_template import migrated_sqlite
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

REMS = EXAMPLES_DIR / "esketamine-rems-session.json"
MRN, SESSION = "MRN-011204", "ENC-2026-1203-021"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", migrated_sqlite(tmp_path / "store.db"))
    monkeypatch.setenv("ADAPTER_TENANT", "clinic-a")
    assert main(["ingest", str(REMS)]) == 0
    return tmp_path


def _leaves(items: tuple[RemsItem, ...]) -> list[RemsItem]:
    return [leaf for i in items for leaf in (_leaves(i.items) if i.items else [i])]


def test_rems__stored_session__page_with_every_item_filled_in(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["rems", MRN, SESSION]) == 0

    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>")
    assert "Form status: completed" in page
    for item in _leaves(REMS_ITEMS):
        cells = re.findall(rf'<td( class="missing")? data-link-id="{item.link_id}">', page)
        assert cells, item.link_id
        assert all(not missing for missing in cells), f"{item.link_id} not filled in"


def test_rems__output_file__written_there(store: Path) -> None:
    target = store / "rems.html"

    assert main(["rems", MRN, SESSION, "--output", str(target)]) == 0

    assert "Spravato REMS Patient Monitoring Form" in target.read_text(encoding="utf-8")


def test_rems__another_tenant__not_found_and_nothing_printed(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    assert main(["rems", MRN, SESSION, "--tenant", "clinic-b"]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert "no session" in err
    assert MRN not in err


def test_rems__session_of_another_patient__not_found(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rems", "MRN-000001", SESSION]) == 1
    assert "no session" in capsys.readouterr().err


def test_rems__ketamine_session__says_it_has_no_rems_record(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(EXAMPLES_DIR / "typical-ketamine-infusion.json")]) == 0
    capsys.readouterr()

    assert main(["rems", "MRN-004211", "ENC-2026-1120-001"]) == 1

    assert "has no REMS record" in capsys.readouterr().err
