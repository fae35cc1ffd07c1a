"""`adapter reconcile` against the real sandbox: a fresh push reconciles to nothing, and
each change an EHR user (plain requests) or the clinic makes is reported as what it is.

Runs on SQLite and on PostgreSQL; each test has a namespace and a tenant of its own, and
reconciles only that tenant (`--tenant`), so the shared database and the long-lived
sandbox hold nothing it could mistake for its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import Engine, select

from adapter.cli import main
from adapter.store.references import referenced_keys
from adapter.store.schema import resources
from adapter.sync.pull.scope import SHARED_TYPES
from mappings.common.identity import identity
from mappings.common.identity import patient as patient_identity
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.integration.support import (
    FHIR_JSON,
    encounter,
    ingest,
    migrated_store,
    push,
    run_context,
    store_url,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Setup:
    database: str
    engine: Engine
    ctx: MappingContext
    base: str


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, fhir_base_url: str, tmp_path: Path) -> Iterator[Setup]:
    database = store_url(request.param, request, tmp_path)
    ctx = replace(run_context(), tenant=f"rc-{uuid.uuid4().hex[:8]}")
    with migrated_store(database) as engine:
        yield Setup(database, engine, ctx, fhir_base_url)


def _ingest(setup: Setup, subs: Sequence[EncounterSubmission]) -> None:
    for sub in subs:
        ingest(setup.engine, sub, setup.ctx)


def _push(setup: Setup, subs: Sequence[EncounterSubmission]) -> None:
    _ingest(setup, subs)
    assert push(setup.engine, setup.base, setup.ctx.tenant).done == len(subs)


def _reconcile(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", setup.database)
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", setup.base)
    monkeypatch.setenv("ADAPTER_EHR_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("ADAPTER_NAMESPACE", setup.ctx.namespace)
    capsys.readouterr()
    status = main(["reconcile", "--tenant", setup.ctx.tenant, "--json"])
    report: dict[str, Any] = orjson.loads(capsys.readouterr().out)
    return status, report


def _pushed_one(setup: Setup) -> tuple[EncounterSubmission, str]:
    """One encounter pushed, and the EHR's id of its patient."""
    sub = encounter(1)
    _push(setup, [sub])
    return sub, _ehr_id(setup, "Patient", _patient_id(setup, sub))


def _ehr_id(setup: Setup, resource_type: str, logical_id: str) -> str:
    with setup.engine.connect() as conn:
        found = conn.execute(
            select(resources.c.ehr_id).where(
                resources.c.tenant == setup.ctx.tenant,
                resources.c.resource_type == resource_type,
                resources.c.logical_id == logical_id,
            )
        ).scalar_one()
    assert isinstance(found, str)
    return found


def _patient_id(setup: Setup, sub: EncounterSubmission) -> str:
    return patient_identity(setup.ctx, sub.patient.mrn).id


def _heart_rate_id(setup: Setup, sub: EncounterSubmission, reading: int = 1) -> str:
    vitals_id = (sub.vitals or [])[reading].vitals_id
    key = f"{sub.encounter_id}~{vitals_id}"  # record ids are scoped by their encounter
    return identity(setup.ctx, "Observation", "vitals", key, "heart-rate").id


def _cited_by_provenance_only(setup: Setup, resource_type: str) -> str:
    """A resource of ours that only the Provenance refers to (so the EHR lets it go)."""
    with setup.engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.logical_id, resources.c.content).where(
                resources.c.tenant == setup.ctx.tenant
            )
        ).all()
    cited = {key for kind, _, text in rows if kind != "Provenance" for key in referenced_keys(text)}
    return next(
        str(i) for kind, i, _ in rows if kind == resource_type and f"{kind}/{i}" not in cited
    )


def _differences(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(d["kind"], d["resource_type"], d["our_id"]) for d in report["differences"]]


def test_reconcile__freshly_pushed_encounters__no_difference(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subs = [
        encounter(1, "typical-ketamine-infusion"),
        encounter(2, "esketamine-session"),
        encounter(3, "stopped-infusion"),
        encounter(1, "typical-ketamine-infusion", visit=1),
    ]
    _push(setup, subs)
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert report["differences"] == []
    assert status == 0
    summary = report["summary"]
    assert summary["patients"] == 3
    assert summary["in_store"] == summary["on_ehr"] == summary["identical"] > 100
    counts = report["counts"][setup.ctx.tenant]
    # Reached by the patient search, by `_id` (Provenance), by read and once per tenant.
    for kind in ("Observation", "Provenance", "Patient", "Practitioner", "Organization"):
        assert counts[kind]["identical"] == counts[kind]["in_store"] > 0, kind


def test_reconcile__field_changed_on_the_ehr__content_differs_naming_the_path(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sub, _ = _pushed_one(setup)
    reading = _heart_rate_id(setup, sub)
    url = f"{setup.base}/Observation/{_ehr_id(setup, 'Observation', reading)}"
    theirs = requests.get(url, headers=FHIR_JSON, timeout=30).json()
    theirs["valueQuantity"]["value"] += 7
    assert requests.put(url, json=theirs, headers=FHIR_JSON, timeout=30).status_code == 200
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert status == 1
    (found,) = report["differences"]
    assert found == {
        "tenant": setup.ctx.tenant,
        "patient": _patient_id(setup, sub),
        "resource_type": "Observation",
        "ehr_id": url.rsplit("/", 1)[1],
        "our_id": reading,
        "kind": "content differs",
        "paths": ["valueQuantity.value"],
    }


def test_reconcile__deleted_on_the_ehr__missing_on_the_ehr(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sub, _ = _pushed_one(setup)
    reading = _cited_by_provenance_only(setup, "Observation")
    # HAPI keeps referential integrity: the Provenance citing the reading goes first.
    provenance = identity(setup.ctx, "Provenance", "submission", sub.encounter_id).id
    for kind, ours in (("Provenance", provenance), ("Observation", reading)):
        url = f"{setup.base}/{kind}/{_ehr_id(setup, kind, ours)}"
        assert requests.delete(url, headers=FHIR_JSON, timeout=30).status_code == 200
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert status == 1
    assert sorted(_differences(report)) == [
        ("missing on the EHR", "Observation", reading),
        ("missing on the EHR", "Provenance", provenance),
    ]
    assert report["summary"]["on_ehr"] == report["summary"]["in_store"] - 2


def test_reconcile__medication_statement_created_on_the_ehr__not_in_the_store(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sub, patient = _pushed_one(setup)
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "sertraline 50 mg tablet"},
        "subject": {"reference": f"Patient/{patient}"},
    }
    reply = requests.post(
        f"{setup.base}/MedicationStatement", json=statement, headers=FHIR_JSON, timeout=30
    )
    assert reply.status_code == 201
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert status == 1
    (found,) = report["differences"]
    assert found["kind"] == "not in the store"
    assert found["resource_type"] == "MedicationStatement"
    assert found["ehr_id"] == reply.json()["id"]
    assert found["our_id"] is None
    assert found["patient"] == _patient_id(setup, sub)


def test_reconcile__clinic_changes_not_pushed_yet__not_yet_sent(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed reading, a new one and one left out of the resend (to be deleted)."""
    sub, _ = _pushed_one(setup)
    vitals = list(sub.vitals or ())
    assert vitals[1].heart_rate is not None
    faster = vitals[1].heart_rate.model_copy(update={"value": vitals[1].heart_rate.value + 20})
    added = vitals[-1].model_copy(update={"vitals_id": f"{vitals[-1].vitals_id}-late"})
    changed = [vitals[0], vitals[1].model_copy(update={"heart_rate": faster}), *vitals[2:-1]]
    _ingest(setup, [sub.model_copy(update={"vitals": [*changed, added]})])
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert status == 1
    found = {d["our_id"]: d for d in report["differences"]}
    assert {d["kind"] for d in found.values()} == {"not yet sent"}
    reading = found[_heart_rate_id(setup, sub)]
    assert reading["paths"] == ["valueQuantity.value"]
    assert reading["ehr_id"] == _ehr_id(setup, "Observation", reading["our_id"])
    key = f"{sub.encounter_id}~{added.vitals_id}"
    late = identity(setup.ctx, "Observation", "vitals", key, "heart-rate").id
    assert found[late]["ehr_id"] is None
    removed = found[_heart_rate_id(setup, sub, reading=len(vitals) - 1)]
    assert removed["ehr_id"] == _ehr_id(setup, "Observation", removed["our_id"])
    assert removed["paths"] == []


def test_reconcile__patient_never_pushed__each_resource_not_yet_sent(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _pushed_one(setup)
    waiting = encounter(2, "esketamine-session")
    _ingest(setup, [waiting])
    status, report = _reconcile(setup, monkeypatch, capsys)
    assert status == 1
    with setup.engine.connect() as conn:
        ours = conn.execute(
            select(resources.c.resource_type, resources.c.logical_id).where(
                resources.c.tenant == setup.ctx.tenant,
                resources.c.patient_key == waiting.patient.mrn,
                resources.c.ehr_id.is_(None),
            )
        ).all()
    assert len(ours) > 10
    assert sorted(_differences(report)) == sorted(
        ("not yet sent", kind, logical_id) for kind, logical_id in ours
    )
    for found in report["differences"]:
        shared = found["resource_type"] in SHARED_TYPES  # its own provider: per tenant
        assert found["patient"] == (None if shared else _patient_id(setup, waiting))


def test_reconcile__text_report__ids_and_paths_only_never_the_mrn(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sub, patient = _pushed_one(setup)
    url = f"{setup.base}/Patient/{patient}"
    theirs = requests.get(url, headers=FHIR_JSON, timeout=30).json()
    theirs["name"][0]["family"] = "Changed-On-The-EHR"
    assert requests.put(url, json=theirs, headers=FHIR_JSON, timeout=30).status_code == 200
    _reconcile(setup, monkeypatch, capsys)  # sets the environment
    assert main(["reconcile", "--tenant", setup.ctx.tenant]) == 1
    out = capsys.readouterr().out
    line, summary = out.splitlines()
    assert line == (
        f"{setup.ctx.tenant}\tpatient {_patient_id(setup, sub)}\tPatient\tEHR {patient}\t"
        f"ours {_patient_id(setup, sub)}\tcontent differs: name[0].family"
    )
    assert summary.startswith("reconcile: 1 differences (0 not yet sent, 0 missing on the EHR, ")
    for private in (sub.patient.mrn, "Changed-On-The-EHR", sub.patient.family_name):
        assert private not in out
