"""The EHR's medications screened too, against the real sandbox: a pull that brings an MAOI
the EHR added for one of our patients raises a DetectedIssue implicating the EHR's resource
(and pushes it); stopping it on the EHR resolves the issue; a clinic statement the EHR
stops resolves the review's own interaction issue."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select

from adapter.store.schema import resources
from adapter.sync.patient_view import patient_view
from mappings.common import identity
from mappings.context import MappingContext
from mappings.medication_review import SCREEN_KIND, refs
from tests.integration.support import (
    ON_BOTH_STORES,
    ehr_create,
    ehr_edit,
    encounter,
    ingest,
    puller,
    push,
    sandbox_search,
    tenant_context,
)

pytestmark = pytest.mark.integration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture
def ctx() -> MappingContext:
    return tenant_context("screen")


def _rows(engine: Engine, ctx: MappingContext, resource_type: str, system: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(resources).where(
            resources.c.tenant == ctx.tenant,
            resources.c.resource_type == resource_type,
            resources.c.identifier_system == system,
        )
        return list(conn.execute(query).all())


def _alerts(engine: Engine, ctx: MappingContext, mrn: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        view = patient_view(conn, ctx, mrn)
    assert view is not None
    found: list[dict[str, Any]] = view["alerts"]  # type: ignore[assignment]
    return found


def _phenelzine(patient_ehr_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "8123", "display": "phenelzine"}],
            "text": "phenelzine 15 mg tablet",
        },
        "subject": {"reference": f"Patient/{patient_ehr_id}"},
        "dateAsserted": "2026-11-24T10:00:00Z",
    }


def _stopped(statement: dict[str, Any]) -> None:
    statement["status"] = "stopped"


@ON_BOTH_STORES
def test_pull__ehr_adds_an_maoi__detected_issue__stopping_it_resolves_it(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(0)
    ingest(store, sub, ctx)
    push(store, fhir_base_url, ctx.tenant)
    patient = identity.patient(ctx, sub.patient.mrn)
    (patient_row,) = _rows(store, ctx, "Patient", patient.system)
    added = ehr_create(fhir_base_url, _phenelzine(patient_row.ehr_id))

    puller(store, fhir_base_url).pull(ctx.tenant)

    screen = identity.system(ctx, SCREEN_KIND)
    (issue_row,) = _rows(store, ctx, "DetectedIssue", screen)
    issue = orjson.loads(issue_row.content)
    (copy,) = [
        r
        for r in _rows(store, ctx, "MedicationStatement", fhir_base_url)
        if r.ehr_id == added["id"]
    ]
    assert issue["implicated"] == [{"reference": f"MedicationStatement/{copy.logical_id}"}]
    assert issue["severity"] == "high"
    assert [c["code"] for c in issue["code"]["coding"]] == ["DRG", "interaction-maois"]
    assert "mitigation" not in issue
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 3  # the review's two classes, and the EHR's MAOI

    # Pushed like every clinic resource: the EHR's copy names the EHR's statement.
    push(store, fhir_base_url, ctx.tenant)
    (on_ehr,) = sandbox_search(fhir_base_url, "DetectedIssue", screen)
    assert on_ehr["implicated"] == [{"reference": f"MedicationStatement/{added['id']}"}]

    ehr_edit(fhir_base_url, "MedicationStatement", added["id"], _stopped)
    puller(store, fhir_base_url).pull(ctx.tenant)

    (issue_row,) = _rows(store, ctx, "DetectedIssue", screen)
    resolved = orjson.loads(issue_row.content)
    (mitigation,) = resolved["mitigation"]
    assert mitigation["action"]["coding"][0]["code"] == "13"
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 2
    push(store, fhir_base_url, ctx.tenant)
    (again,) = sandbox_search(fhir_base_url, "DetectedIssue", screen)
    assert again["mitigation"][0]["action"]["coding"][0]["code"] == "13"


@ON_BOTH_STORES
def test_pull__ehr_stops_the_clinics_sertraline__review_issue_resolved(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(1)
    ingest(store, sub, ctx)
    push(store, fhir_base_url, ctx.tenant)
    assert sub.medication_review is not None
    review_key = f"{sub.encounter_id}~{sub.medication_review.review_id}"
    sertraline = refs.statement(ctx, review_key, 1)  # the typical review's first medication
    (statement_row,) = [
        r
        for r in _rows(store, ctx, "MedicationStatement", sertraline.system)
        if r.identifier_value == sertraline.value
    ]

    ehr_edit(fhir_base_url, "MedicationStatement", statement_row.ehr_id, _stopped)
    puller(store, fhir_base_url).pull(ctx.tenant)

    issues = {
        r.identifier_value.rsplit("~", 1)[-1]: orjson.loads(r.content)
        for r in _rows(store, ctx, "DetectedIssue", identity.system(ctx, refs.INTERACTION_KIND))
    }
    assert "mitigation" in issues["ssri-snri"]
    assert "mitigation" not in issues["cns-depressants"]  # lorazepam is still taken
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 1
