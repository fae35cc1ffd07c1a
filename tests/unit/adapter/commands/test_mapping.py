"""`adapter map`: Bundles out, one error line per bad field, coverage with --check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapter.cli import main
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR

TYPICAL = EXAMPLES_DIR / "typical-ketamine-infusion.json"


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A folder with the three shared examples and one invalid document."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in EXAMPLE_NAMES:
        shutil.copy(EXAMPLES_DIR / f"{name}.json", folder)
    broken = json.loads(TYPICAL.read_text())
    broken["vitals"][1]["diastolic"]["value"] = 400
    del broken["patient"]["birth_date"]
    (folder / "broken.json").write_text(json.dumps(broken))
    return folder


def test_map__one_file__prints_transaction_bundle_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["map", str(TYPICAL)]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "transaction"
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "MedicationAdministration", "Provenance"} <= kinds


def test_map__folder_with_invalid_file__writes_valid_ones_and_reports_each_error(
    inbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["map", str(inbox), "--out", str(out)]) == 1
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{name}.bundle.json" for name in EXAMPLE_NAMES)
    errors = capsys.readouterr().err.splitlines()
    broken = inbox / "broken.json"
    assert any(line.startswith(f"{broken}: vitals[1].diastolic") for line in errors)
    assert any(line.startswith(f"{broken}: patient.birth_date") for line in errors)
    assert all(line.startswith(str(broken)) for line in errors)


def test_map__folder_without_out__writes_bundles_beside_inputs(
    inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inbox / "broken.json").unlink()
    assert main(["map", str(inbox)]) == 0
    assert len(list(inbox.glob("*.bundle.json"))) == len(EXAMPLE_NAMES)
    assert capsys.readouterr().out == ""
    assert main(["map", str(inbox)]) == 0  # its own output is not taken as input


def test_map__missing_path__exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert main(["map", str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err


def test_map__namespace_option__sets_identifier_systems(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["map", str(TYPICAL), "--namespace", "https://fhir.other-clinic.test/"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["system"].startswith("https://fhir.other-clinic.test/sid/")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_check__shared_example__every_field_reaches_fhir_and_round_trips(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["map", str(EXAMPLES_DIR / f"{name}.json"), "--check"]) == 0
    report = capsys.readouterr().err
    summary = report.splitlines()[0]
    assert "round trip lossless" in summary
    assert "DROPPED" not in report
    mrn_line = next(line for line in report.splitlines() if line.startswith("  patient.mrn -> "))
    assert "Patient.identifier" in mrn_line
