"""The protocol's DetectedIssues and the alerts' Flags against the real sandbox's validator:
every one the adapter can write validates with no error (ended Flags and resolved
interaction issues included)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from adapter.ingest import ingest_encounter
from mappings.alerts import settle
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import map_submission
from mappings.jsontypes import Resource
from mappings.medication_review import screen_ehr_medications
from tests.integration.support import push, sandbox_search, tenant_context, validation_errors
from tests.unit.mappings.fhircheck import load_example

pytestmark = pytest.mark.integration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _alerts_of_a_bad_session(ctx: MappingContext) -> list[dict[str, Any]]:
    sub = load_example("stopped-infusion").model_dump(mode="json", exclude_none=True)
    sub["infusion"] |= {
        "status": "completed",
        "dose_mg_per_kg": 1.5,
        "total_dose_mg": 126.0,
        "weight": {"value": 84, "unit": "kg"},
        "recovery_end": sub["infusion"]["end"],
    }
    sub["infusion"].pop("status_reason", None)
    sub["providers"][0]["acls_certified"] = False
    answers = ("wish_to_be_dead", "non_specific_active_thoughts", "active_ideation_with_intent",
               "active_ideation_with_plan", "suicidal_behavior_past_3_months")  # fmt: skip
    cssrs = dict.fromkeys(answers, False) | {"active_ideation_with_method": True}
    sub["intake_screening"]["cssrs"] = cssrs
    mapped = map_submission(EncounterSubmission.model_validate(sub), ctx)
    later = [dict(r) for r in settle(mapped, [], ctx).document]
    wanted = [r for r in later if r["resourceType"] in ("Flag", "DetectedIssue")]
    entry: Resource = {
        "resourceType": "MedicationStatement",
        "id": "k-ehr-1",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "8123"}]},
        "subject": {"reference": "Patient/p"},
    }
    (raised,) = screen_ehr_medications([entry], [], "MRN-1", "2026-11-25T07:30:00Z", ctx)
    (resolved,) = screen_ehr_medications([], [raised], "MRN-1", "2026-11-26T07:30:00Z", ctx)
    return [*wanted, dict(raised), dict(resolved)]


def test_validate__protocol_issues_and_alert_flags__no_error_issues(fhir_base_url: str) -> None:
    ctx = MappingContext(namespace=f"https://fhir.it-{uuid.uuid4().hex[:10]}.example")
    alerts = _alerts_of_a_bad_session(ctx)
    codes = {c["code"] for a in alerts for c in a["code"]["coding"]}
    assert {"DOSEH", "protocol-observation-short", "protocol-monitor-not-qualified"} <= codes
    assert {"flag-suicide-risk-moderate", "flag-critical-blood-pressure"} <= codes
    failures = validation_errors(fhir_base_url, alerts)
    assert not failures, failures


def test_push__a_session_needing_an_eye__its_issues_and_flags_reach_the_ehr(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = tenant_context("it")
    sub = load_example("typical-ketamine-infusion").model_dump(mode="json", exclude_none=True)
    sub["infusion"] |= {"dose_mg_per_kg": 1.5, "total_dose_mg": 102.0}
    ingest_encounter(store, orjson.dumps(sub), ctx)
    push(store, fhir_base_url, ctx.tenant)
    system = f"{ctx.namespace}/sid/infusion-protocol-issue"
    found = sandbox_search(fhir_base_url, "DetectedIssue", system)
    assert sorted(c["code"] for r in found for c in r["code"]["coding"]) == [
        "DOSEH",
        "DOSEH",
        "protocol-dose-above-usual",
        "protocol-dose-above-usual",
    ]
    for issue in found:
        assert issue["implicated"][0]["reference"].startswith("MedicationAdministration/")
        assert {s["code"] for s in issue["meta"]["security"]} >= {"R", "PSY", "BH"}
