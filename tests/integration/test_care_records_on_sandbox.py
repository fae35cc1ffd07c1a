"""The care records and the Spravato REMS record, pushed through the adapter to the real
sandbox: every new resource accepted once, and the REMS Questionnaire and its response
valid on the sandbox's `$validate` with 0 errors (the response checked against the
Questionnaire the push put there)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from mappings.care import questionnaire_url
from mappings.common.bundle import resource_identity
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from tests.integration.support import FHIR_JSON, ingest, push, run_context, sandbox_search
from tests.unit.mappings.fhircheck import load_example

pytestmark = pytest.mark.integration

CARE_TYPES = ("Consent", "CarePlan", "Medication", "Questionnaire", "QuestionnaireResponse")


def _pushed(engine: Engine, base: str, ctx: MappingContext) -> list[dict[str, Any]]:
    sub = load_example("esketamine-rems-session")
    ingest(engine, sub, ctx)
    assert push(engine, base).done == 1
    return map_submission(sub, ctx)


def _on_sandbox(base: str, resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    ident = resource_identity(resource, ctx)
    entries = sandbox_search(base, ident.resource_type, ident.system, ident.value)
    assert len(entries) == 1, (ident.resource_type, len(entries))
    found: dict[str, Any] = entries[0]
    return found


def _issues(base: str, resource: dict[str, Any]) -> list[str]:
    reply = requests.post(
        f"{base}/{resource['resourceType']}/$validate",
        json=resource,
        headers=FHIR_JSON,
        timeout=120,
    )
    return [
        f"{i.get('severity')}: {i.get('diagnostics')} @ {i.get('expression')}"
        for i in reply.json().get("issue", [])
        if i.get("severity") in ("error", "fatal")
    ]


def test_push__care_records__each_on_the_ehr_once(fhir_base_url: str, store: Engine) -> None:
    ctx = run_context()
    mapped = _pushed(store, fhir_base_url, ctx)

    care = [r for r in mapped if r["resourceType"] in CARE_TYPES]
    assert sorted(r["resourceType"] for r in care) == sorted(CARE_TYPES)
    for resource in care:
        _on_sandbox(fhir_base_url, resource, ctx)
    administration = next(
        r
        for r in mapped
        if r["resourceType"] == "MedicationAdministration" and "medicationReference" in r
    )
    on_ehr = _on_sandbox(fhir_base_url, administration, ctx)
    medication = _on_sandbox(fhir_base_url, _one(mapped, "Medication"), ctx)
    assert on_ehr["medicationReference"]["reference"].endswith(f"Medication/{medication['id']}")
    assert medication["batch"] == {"lotNumber": "KJ4471B", "expirationDate": "2027-08-31"}


def test_validate__rems_questionnaire_and_response_from_the_ehr__zero_errors(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = run_context()
    mapped = _pushed(store, fhir_base_url, ctx)
    questionnaire = _on_sandbox(fhir_base_url, _one(mapped, "Questionnaire"), ctx)
    response = _on_sandbox(fhir_base_url, _one(mapped, "QuestionnaireResponse"), ctx)

    assert questionnaire["url"] == questionnaire_url(ctx)
    assert response["status"] == "completed"
    assert _issues(fhir_base_url, questionnaire) == []
    assert _issues(fhir_base_url, response) == []


def test_validate__rems_response_with_a_wrong_answer_type__refused_by_its_questionnaire(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = run_context()
    mapped = _pushed(store, fhir_base_url, ctx)
    response = _on_sandbox(fhir_base_url, _one(mapped, "QuestionnaireResponse"), ctx)
    dose = next(i for i in response["item"] if i["linkId"] == "dose")
    dose["answer"] = [{"valueString": "fifty-six"}]

    assert any("Quantity" in issue for issue in _issues(fhir_base_url, response))


def _one(resources: list[dict[str, Any]], resource_type: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["resourceType"] == resource_type]
    return found
