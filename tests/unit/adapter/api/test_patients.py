"""`GET /clinic/patients/{mrn}`: the current record as the clinic contract words it, with
what the pull took from the EHR (written to the store here as the pull writes it)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from adapter.api.app import create_app
from adapter.api.clinic import patients
from adapter.runtime import mapping_context
from adapter.store.schema import audit, resources
from mappings.common import identity
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from mappings.contract import MedicationRecord
from mappings.medication_review import refs
from tests.unit.adapter.api.conftest import (
    SENTINELS,
    bearer,
    example,
    post_encounter,
    running,
    sentinel_document,
    settings_for,
    write_keys,
)
from tests.unit.adapter.api.pulled import deleted, edited, imported

VIEWER_A = "viewer-of-clinic-a-0123456789abcdef"
NO_SCOPE_A = "submissions-of-clinic-a-0123456789abcdef"
VIEWER_B = "wildcard-of-clinic-b-0123456789abcdef"
# What the service maps clinic-a's documents with (per-tenant namespaces, the default).
CTX = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/clinic-a", tenant="clinic-a")
MRN = "MRN-004211"
# The typical example's review, named by its record key (`<encounter_id>~<review_id>`).
REVIEW_KEY = "ENC-2026-1120-001~MR-3301"
NO_KNOWN_ALLERGIES_MRN = "MRN-009876"
AT = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
ITEM_KEYS = ("source", "updated_at", "fhir", "fhir_status")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _keys(tenant_a: str, tenant_b: str) -> list[dict[str, Any]]:
    return [
        {
            "key": VIEWER_A,
            "tenant": tenant_a,
            "scopes": ["clinic/encounters.write", "clinic/patients.read"],
        },
        {"key": NO_SCOPE_A, "tenant": tenant_a, "scopes": ["clinic/submissions.read"]},
        {"key": VIEWER_B, "tenant": tenant_b, "scopes": ["clinic/*.write", "clinic/*.read"]},
    ]


def _app(
    tmp_path: Path, tenants: tuple[str, str] = ("clinic-a", "clinic-b"), **overrides: Any
) -> FastAPI:
    keys = tmp_path / "keys"
    keys.mkdir()
    path = write_keys(keys, _keys(*tenants))
    return create_app(settings_for(tmp_path, api_keys_file=str(path), **overrides))


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return _app(tmp_path)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


def _sent(client: TestClient, *names: str, key: str = VIEWER_A) -> None:
    for name in names:
        assert post_encounter(client, example(name), key=key).status_code == 201


def _view(client: TestClient, mrn: str = MRN, key: str = VIEWER_A) -> dict[str, Any]:
    reply = client.get(f"/clinic/patients/{mrn}", headers=bearer(key))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _contract(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ITEM_KEYS}


def _patient_ref(mrn: str = MRN, ctx: MappingContext = CTX) -> str:
    return identity.patient(ctx, mrn).reference


def _statement_ref(position: int) -> str:
    return refs.statement(CTX, REVIEW_KEY, position).reference


def test_clinic_only__contract_fields__each_from_the_clinic(
    app: FastAPI, client: TestClient
) -> None:
    _sent(client, "typical-ketamine-infusion")
    body = _view(client)
    sent = example("typical-ketamine-infusion")
    patient = body["patient"]
    assert {k: patient[k] for k in sent["patient"]} == sent["patient"]
    assert (patient["source"], patient["fhir"]) == ("clinic", _patient_ref())
    assert datetime.fromisoformat(patient["updated_at"]).utcoffset() is not None
    medications = body["medications"]
    expected = [
        MedicationRecord.model_validate(m).model_dump(mode="json")
        for m in sent["medication_review"]["medications"]
    ]
    assert [_contract(m) for m in medications] == expected
    assert [m["fhir"] for m in medications] == [_statement_ref(1), _statement_ref(2)]
    assert [m["fhir_status"] for m in medications] == ["active", "on-hold"]
    assert {m["source"] for m in medications} == {"clinic"}
    allergy = {"substance": "penicillin", "reaction": "hives", "severity": "moderate"}
    assert [_contract(a) for a in body["allergies"]] == [allergy | {"rxnorm": None}]
    assert body["no_known_allergies"] is False
    review = body["medication_review"]
    assert review["review_id"] == "MR-3301"
    assert review["reviewed_at"] == sent["medication_review"]["reviewed_at"]
    assert review["fhir"] == refs.review(CTX, REVIEW_KEY).reference
    # The infusion's order is a MedicationRequest of this patient, but no list item.
    with app.state.engine.connect() as conn:
        types = conn.execute(
            select(resources.c.resource_type).where(resources.c.patient_key == MRN)
        )
        assert "MedicationRequest" in set(types.scalars())
    assert not [m for m in medications if m["fhir"].startswith("MedicationRequest/")]


def test_review_said_none__empty_list_and_no_known_allergies(client: TestClient) -> None:
    _sent(client, "esketamine-session")
    body = _view(client, NO_KNOWN_ALLERGIES_MRN)
    assert (body["medications"], body["allergies"]) == ([], [])
    assert body["no_known_allergies"] is True


def _later_review(encounter_id: str, review_id: str, reviewed_at: str) -> dict[str, Any]:
    """Another encounter of the typical patient, carrying only a medication review."""
    document = example("typical-ketamine-infusion")
    for record in ("infusion", "vitals", "intake_screening"):
        document.pop(record, None)
    document["encounter_id"] = encounter_id
    document["medication_review"] = {
        "review_id": review_id,
        "reviewed_at": reviewed_at,
        "medications": [{"name": "bupropion", "status": "active", "dose": "150 mg"}],
    }
    return document


def test_latest_review__by_reviewed_at__not_by_arrival(client: TestClient) -> None:
    _sent(client, "typical-ketamine-infusion")
    later = _later_review("ENC-LATER", "MR-LATER", "2026-12-01T09:00:00Z")
    assert post_encounter(client, later, key=VIEWER_A).status_code == 201
    earlier = _later_review("ENC-EARLIER", "MR-EARLIER", "2026-10-01T09:00:00Z")
    assert post_encounter(client, earlier, key=VIEWER_A).status_code == 201
    body = _view(client)
    assert body["medication_review"]["review_id"] == "MR-LATER"
    assert [m["name"] for m in body["medications"]] == ["bupropion"]
    # The later review recorded no allergies: none listed, none stated.
    assert (body["allergies"], body["no_known_allergies"]) == ([], False)


def test_ehr_edited_phone__shown__source_ehr(app: FastAPI, client: TestClient) -> None:
    _sent(client, "typical-ketamine-infusion")

    def new_phone(content: dict[str, Any]) -> None:
        content["telecom"] = [{"system": "phone", "value": "+1-555-010-9999"}]

    edited(app.state.engine, "clinic-a", _patient_ref(), new_phone, AT)
    patient = _view(client)["patient"]
    assert patient["phone"] == "+1-555-010-9999"
    assert patient["source"] == "ehr"
    assert datetime.fromisoformat(patient["updated_at"]) == AT
    assert patient["given_name"] == "Ana María"


def test_ehr_edit_outside_contract__shown_as_written(app: FastAPI, client: TestClient) -> None:
    _sent(client, "typical-ketamine-infusion")

    def partial_birth_date(content: dict[str, Any]) -> None:
        content["birthDate"] = "1984"
        content["name"] = [{"text": "A. García"}]

    edited(app.state.engine, "clinic-a", _patient_ref(), partial_birth_date, AT)
    patient = _view(client)["patient"]
    assert (patient["birth_date"], patient["given_name"], patient["sex"]) == (
        "1984",
        None,
        "female",
    )
    assert patient["address"]["city"] == "Springfield"


def test_ehr_edited_statement__ehr_content__clinic_instruction(
    app: FastAPI, client: TestClient
) -> None:
    _sent(client, "typical-ketamine-infusion")

    def new_dose(content: dict[str, Any]) -> None:
        content["dosage"] = [{"text": "1 mg"}]

    def stopped(content: dict[str, Any]) -> None:
        content["status"] = "stopped"

    edited(app.state.engine, "clinic-a", _statement_ref(2), new_dose, AT)
    edited(app.state.engine, "clinic-a", _statement_ref(1), stopped, AT)
    sertraline, lorazepam = _view(client)["medications"]
    # Still on-hold in FHIR: the clinic's `active` + `hold` stands; the dose is the EHR's.
    assert (lorazepam["dose"], lorazepam["frequency"]) == ("1 mg", None)
    assert (lorazepam["status"], lorazepam["instruction"]) == ("active", "hold")
    assert lorazepam["source"] == "ehr"
    assert (sertraline["status"], sertraline["fhir_status"]) == ("stopped", "stopped")
    assert (sertraline["rxnorm"], sertraline["source"]) == ("36437", "ehr")


def _ehr_statement() -> dict[str, Any]:
    coding = {"system": RXNORM, "code": "51272", "display": "quetiapine"}
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"coding": [coding], "text": "Seroquel"},
        "subject": {"reference": _patient_ref()},
        "dosage": [{"text": "50 mg at night"}],
        "note": [{"text": "started by Dr. Osei"}],
    }


def _ehr_request() -> dict[str, Any]:
    display = "lithium carbonate 300 MG Oral Capsule"
    dose = {"doseQuantity": {"value": 300.0, "unit": "mg"}}
    return {
        "resourceType": "MedicationRequest",
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "display": display}]},
        "subject": {"reference": _patient_ref()},
        "dosageInstruction": [{"doseAndRate": [dose]}],
    }


def _ehr_allergy(substance: str, verification: str = "confirmed") -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    return {
        "resourceType": "AllergyIntolerance",
        "verificationStatus": {"coding": [{"system": system, "code": verification}]},
        "code": {"text": substance},
        "patient": {"reference": _patient_ref()},
        "reaction": [{"manifestation": [{"text": "rash"}], "severity": "mild"}],
    }


def test_imported_statement_request_allergy__listed__source_ehr(
    app: FastAPI, client: TestClient
) -> None:
    _sent(client, "typical-ketamine-infusion")
    engine = app.state.engine
    statement = imported(engine, "clinic-a", MRN, _ehr_statement(), "ms-1", AT)
    request = imported(engine, "clinic-a", MRN, _ehr_request(), "mr-1", AT)
    allergy = imported(engine, "clinic-a", MRN, _ehr_allergy("latex"), "ai-1", AT)
    imported(engine, "clinic-a", MRN, _ehr_allergy("codeine", "refuted"), "ai-2", AT)
    body = _view(client)
    medications = body["medications"]
    assert [m["fhir"] for m in medications] == [_statement_ref(1), _statement_ref(2)] + [
        statement,
        request,
    ]
    quetiapine, lithium = medications[2:]
    assert _contract(quetiapine) == {
        "name": "Seroquel",
        "status": "active",
        "rxnorm": "51272",
        "dose": "50 mg at night",
        "frequency": None,
        "instruction": None,
        "note": "started by Dr. Osei",
    }
    assert (quetiapine["source"], datetime.fromisoformat(quetiapine["updated_at"])) == ("ehr", AT)
    assert lithium["name"] == "lithium carbonate 300 MG Oral Capsule"
    assert (lithium["status"], lithium["fhir_status"], lithium["dose"]) == (
        "stopped",
        "completed",
        "300 mg",
    )
    latex = body["allergies"][1]
    assert _contract(latex) == {
        "substance": "latex",
        "reaction": "rash",
        "severity": "mild",
        "rxnorm": None,
    }
    assert (latex["source"], latex["fhir"]) == ("ehr", allergy)
    assert [a["substance"] for a in body["allergies"]] == ["penicillin", "latex"]


def test_imported_allergy__no_known_allergies_no_longer_stands(
    app: FastAPI, client: TestClient
) -> None:
    _sent(client, "esketamine-session")
    engine = app.state.engine
    imported(engine, "clinic-a", NO_KNOWN_ALLERGIES_MRN, _ehr_allergy("latex"), "ai-9", AT)
    body = _view(client, NO_KNOWN_ALLERGIES_MRN)
    assert [a["substance"] for a in body["allergies"]] == ["latex"]
    assert body["no_known_allergies"] is False


def test_tombstones__never_shown(app: FastAPI, client: TestClient) -> None:
    _sent(client, "typical-ketamine-infusion")
    engine = app.state.engine
    statement = imported(engine, "clinic-a", MRN, _ehr_statement(), "ms-1", AT)
    deleted(engine, "clinic-a", statement, AT)
    deleted(engine, "clinic-a", _statement_ref(2), AT)
    penicillin = refs.allergy(CTX, REVIEW_KEY, "1").reference
    deleted(engine, "clinic-a", penicillin, AT)
    body = _view(client)
    assert [m["fhir"] for m in body["medications"]] == [_statement_ref(1)]
    assert body["allergies"] == []
    deleted(engine, "clinic-a", _patient_ref(), AT)
    assert client.get(f"/clinic/patients/{MRN}", headers=bearer(VIEWER_A)).status_code == 404


def test_unknown_other_tenant_bad_mrn__one_identical_404(client: TestClient) -> None:
    _sent(client, "typical-ketamine-infusion")
    answers = [
        client.get(f"/clinic/patients/{MRN}", headers=bearer(VIEWER_B)),
        client.get("/clinic/patients/MRN-NEVER-SENT", headers=bearer(VIEWER_A)),
        client.get("/clinic/patients/has%20space", headers=bearer(VIEWER_A)),
        client.get(f"/clinic/patients/{'M' * 65}", headers=bearer(VIEWER_A)),
        client.get("/clinic/patients/M%C3%A9", headers=bearer(VIEWER_A)),
    ]
    assert {reply.status_code for reply in answers} == {404}
    assert {reply.content for reply in answers} == {answers[0].content}
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert MRN not in answers[0].text


def test_scopes__401_without_key__403_without_scope__wildcard_grants(
    client: TestClient,
) -> None:
    _sent(client, "typical-ketamine-infusion")
    _sent(client, "stopped-infusion", key=VIEWER_B)
    assert client.get(f"/clinic/patients/{MRN}").status_code == 401
    refused = client.get(f"/clinic/patients/{MRN}", headers=bearer(NO_SCOPE_A))
    assert refused.status_code == 403
    assert "clinic/patients.read" in refused.json()["detail"]
    assert _view(client, "MRN-000317", key=VIEWER_B)["patient"]["mrn"] == "MRN-000317"


def _adapter_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What the adapter logged (the test client's own log lines quote the URL it asked)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("adapter"))


def test_store_not_migrated_yet__503_retry_after(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path))  # no lifespan: the background migration never ran
    reply = client.get(f"/clinic/patients/{MRN}", headers=bearer(VIEWER_A))
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "2"


def test_store_error__503__nothing_clinical_logged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def database_down(*_: object, **__: object) -> None:
        raise OperationalError(f"SELECT ... '{MRN}'", {}, Exception("García-López"))

    monkeypatch.setattr(patients, "patient_view", database_down)
    reply = client.get(f"/clinic/patients/{MRN}", headers=bearer(VIEWER_A))
    assert reply.status_code == 503
    assert MRN not in reply.text
    logged = _adapter_logs(caplog)
    assert "OperationalError" in logged
    assert MRN not in logged
    assert "García" not in logged


def test_sentinel_patient__read__never_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert post_encounter(client, sentinel_document(), key=VIEWER_A).status_code == 201
    assert _view(client, "MRN-SENTINEL-7731")["patient"]["given_name"] == "Zebulon-Sentinel"
    logged = _adapter_logs(caplog)
    assert "read a patient record" in logged
    for sentinel in SENTINELS:
        assert sentinel not in logged


def test_audit__read_recorded_by_logical_id__never_the_mrn(
    app: FastAPI, client: TestClient
) -> None:
    _sent(client, "typical-ketamine-infusion")
    _view(client)
    client.get("/clinic/patients/MRN-NEVER-SENT", headers=bearer(VIEWER_A))
    client.get(f"/clinic/patients/{MRN}", headers=bearer(NO_SCOPE_A))
    assert app.state.audit_writer.flush()
    with app.state.engine.connect() as conn:
        rows = conn.execute(
            select(audit.c.action, audit.c.object, audit.c.outcome)
            .where(audit.c.object.not_like("Submission/%"))
            .order_by(audit.c.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("read", _patient_ref(), "200"),
        ("read", "clinic/patients", "404"),
        ("read", "clinic/patients", "403"),
    ]


def test_per_tenant_namespaces__each_clinic_its_own_patient(tmp_path: Path) -> None:
    app = _app(tmp_path, tenant_namespaces="per-tenant")
    for client in running(app):
        _sent(client, "typical-ketamine-infusion")
        _sent(client, "typical-ketamine-infusion", key=VIEWER_B)
        a, b = _view(client), _view(client, key=VIEWER_B)
    settings = app.state.settings
    assert a["patient"]["fhir"] == _patient_ref(ctx=mapping_context(settings, "clinic-a"))
    assert b["patient"]["fhir"] == _patient_ref(ctx=mapping_context(settings, "clinic-b"))
    assert a["patient"]["fhir"] != b["patient"]["fhir"]
    assert [m["name"] for m in a["medications"]] == ["sertraline", "lorazepam"]
    assert [m["name"] for m in b["medications"]] == ["sertraline", "lorazepam"]


def test_openapi__response_schema_with_field_descriptions(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    answer = document["paths"]["/clinic/patients/{mrn}"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("PatientRecordView")
    schemas = document["components"]["schemas"]
    assert "description" in schemas["PatientRecordView"]["properties"]["no_known_allergies"]
    assert "description" in schemas["MedicationView"]["properties"]["source"]


@pytest.mark.integration
def test_on_postgresql__ehr_edit_and_import_shown(tmp_path: Path, postgres_url: str) -> None:
    # Tenants of their own: other tests share this PostgreSQL.
    tenants = (f"view-a-{uuid.uuid4().hex[:8]}", f"view-b-{uuid.uuid4().hex[:8]}")
    app = _app(tmp_path, tenants, database_url=postgres_url)
    for client in running(app):
        _sent(client, "typical-ketamine-infusion")

        def new_phone(content: dict[str, Any]) -> None:
            content["telecom"] = [{"system": "phone", "value": "+1-555-010-9999"}]

        own = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenants[0]}", tenant=tenants[0])
        edited(app.state.engine, tenants[0], _patient_ref(ctx=own), new_phone, AT)
        allergy = imported(app.state.engine, tenants[0], MRN, _ehr_allergy("latex"), "ai-1", AT)
        body = _view(client)
        other = client.get(f"/clinic/patients/{MRN}", headers=bearer(VIEWER_B))
    assert (body["patient"]["phone"], body["patient"]["source"]) == ("+1-555-010-9999", "ehr")
    assert datetime.fromisoformat(body["patient"]["updated_at"]) == AT
    assert [a["fhir"] for a in body["allergies"]][1:] == [allergy]
    assert [m["source"] for m in body["medications"]] == ["clinic", "clinic"]
    assert other.status_code == 404
