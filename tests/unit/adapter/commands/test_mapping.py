"""`adapter map`: Bundles out, one error line per bad field, coverage with --check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR

TYPICAL = EXAMPLES_DIR / "typical-ketamine-infusion.json"


@pytest.fixture(autouse=True)
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store of the test's own (no file until something creates it)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("ADAPTER_DATABASE_URL", url)
    return url


def _bundle_identifiers(out: str) -> set[tuple[str, str]]:
    found = set()
    for entry in json.loads(out)["entry"]:
        listed = entry["resource"].get("identifier")
        for ident in listed if isinstance(listed, list) else [listed] if listed else []:
            found.add((ident["system"], ident["value"]))
    return found


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
    # Per-tenant namespaces (the default): the tenant's own, under the base.
    system = patient["identifier"][0]["system"]
    assert system == "https://fhir.other-clinic.test/default/sid/mrn"


@pytest.mark.parametrize(
    ("mode", "namespace"),
    [
        ("per-tenant", "https://fhir.example-clinic.org/clinic-a"),
        ("shared", "https://fhir.example-clinic.org"),
    ],
)
def test_map__tenant_namespaces_setting__the_identifiers_the_service_writes(
    mode: str, namespace: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADAPTER_TENANT_NAMESPACES", mode)
    monkeypatch.setenv("ADAPTER_TENANT", "clinic-a")
    assert main(["map", str(TYPICAL)]) == 0
    mapped = _bundle_identifiers(capsys.readouterr().out)
    assert (f"{namespace}/sid/mrn", "MRN-004211") in mapped
    assert (f"{namespace}/sid/vitals", "ENC-2026-1120-001~VS-1~panel") in mapped
    ours = [system for system, _ in mapped if system.startswith("https://fhir.example-clinic")]
    assert all(system.startswith(namespace + "/sid/") for system in ours)


def test_map__birth_date_after_today__refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(TYPICAL.read_text())
    document["patient"]["birth_date"] = "2999-01-01"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(document))
    assert main(["map", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: patient.birth_date: birth date 2999-01-01 is in the future")


def test_map__control_character__refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(TYPICAL.read_text())
    document["patient"]["family_name"] = "Garc\u0000ía"
    path = tmp_path / "nul.json"
    path.write_text(json.dumps(document))
    assert main(["map", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: patient.family_name: the text holds the control character")


def test_map__store_holds_the_encounter_for_another_patient__refused_as_the_api_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(TYPICAL)]) == 0
    document = json.loads(TYPICAL.read_text())
    document["patient"]["mrn"] = "MRN-SOMEONE-ELSE"
    path = tmp_path / "moved.json"
    path.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["map", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: encounter_id: encounter ENC-2026-1120-001 was first sent")
    assert main(["map", "--no-store", str(path)]) == 0


def test_map__store_of_an_older_schema__exit_2_asking_for_migrate(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_store_engine(store_url)
    upgrade(engine, "0006")
    engine.dispose()
    assert main(["map", str(TYPICAL)]) == 2
    assert "adapter migrate" in capsys.readouterr().err
    assert main(["map", "--no-store", str(TYPICAL)]) == 0


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


def test_map__dose_the_protocol_forbids__refused_as_the_api_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((EXAMPLES_DIR / "esketamine-session.json").read_text())
    document["infusion"]["total_dose_mg"] = 200
    path = tmp_path / "esketamine-200.json"
    path.write_text(json.dumps(document))
    assert main(["map", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: infusion.total_dose_mg: 200 mg is not an allowed esketamine")
    assert "doses.esketamine.intranasal.allowed_total_mg" in line
