"""Medication and allergy entries an EHR wrote, read as contract items from plain R4."""

from __future__ import annotations

from typing import Any

import pytest

from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import MedicationReview
from mappings.medication_review.ehr_lists import (
    edited_medication,
    ehr_allergy,
    ehr_medication,
    is_current_allergy,
    is_no_known_allergy,
)
from mappings.medication_review.review import map_medication_review

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
SCOPE = EncounterScope("ENC-1", "MRN-1")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Every code of R4's medication-statement-status and medicationrequest-status.
STATUSES = [
    ("active", "active"),
    ("on-hold", "on_hold"),
    ("intended", "on_hold"),
    ("draft", "on_hold"),
    ("stopped", "stopped"),
    ("completed", "stopped"),
    ("not-taken", "stopped"),
    ("cancelled", "stopped"),
    ("entered-in-error", "stopped"),
    ("unknown", "active"),
]


def _review(medications: list[dict[str, Any]], allergies: Any = None) -> list[dict[str, Any]]:
    record = MedicationReview.model_validate(
        {
            "review_id": "MR-1",
            "reviewed_at": "2026-11-20T08:50:00-05:00",
            "medications": medications,
            "allergies": allergies,
        }
    )
    return map_medication_review(record, SCOPE, CTX)


def _of_type(resources: list[dict[str, Any]], resource_type: str) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == resource_type)


@pytest.mark.parametrize(("fhir_status", "status"), STATUSES)
@pytest.mark.parametrize("resource_type", ["MedicationStatement", "MedicationRequest"])
def test_ehr_medication__each_r4_status__contract_status_and_code_kept(
    resource_type: str, fhir_status: str, status: str
) -> None:
    found = ehr_medication({"resourceType": resource_type, "status": fhir_status})
    assert (found["status"], found["fhir_status"]) == (status, fhir_status)


def test_ehr_medication__no_status__active_screened() -> None:
    assert ehr_medication({"resourceType": "MedicationStatement"})["status"] == "active"


@pytest.mark.parametrize(
    ("element", "name"),
    [
        ({"medicationCodeableConcept": {"text": "Seroquel"}}, "Seroquel"),
        ({"medicationCodeableConcept": {"coding": [{"display": "quetiapine"}]}}, "quetiapine"),
        ({"medicationReference": {"reference": "Medication/1", "display": "Lithium"}}, "Lithium"),
        ({"medicationReference": {"reference": "Medication/1"}}, None),
    ],
)
def test_ehr_medication__name__text_display_or_reference(
    element: dict[str, Any], name: str | None
) -> None:
    assert ehr_medication({"resourceType": "MedicationStatement", **element})["name"] == name


def test_ehr_medication__rxnorm__user_selected_first__other_systems_ignored() -> None:
    concept: dict[str, Any] = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "386840002"},
            {"system": RXNORM, "code": "1", "display": "table"},
            {"system": RXNORM, "code": "2", "userSelected": True},
        ]
    }
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "medicationCodeableConcept": concept,
    }
    assert ehr_medication(res)["rxnorm"] == "2"
    concept["coding"].pop()
    assert ehr_medication(res)["rxnorm"] == "1"
    concept["coding"].pop()
    assert ehr_medication(res)["rxnorm"] is None


@pytest.mark.parametrize(
    ("element", "dose"),
    [
        ({"dosage": [{"text": "50 mg at night"}]}, "50 mg at night"),
        ({"dosageInstruction": [{"text": "1 tab daily"}]}, "1 tab daily"),
        (
            {"dosage": [{"doseAndRate": [{"doseQuantity": {"value": 300.0, "unit": "mg"}}]}]},
            "300 mg",
        ),
        ({"dosage": [{"doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "mg"}}]}]}, "0.5 mg"),
        ({"dosage": [{"doseAndRate": [{"doseQuantity": {"value": True}}]}]}, None),
        ({}, None),
    ],
)
def test_ehr_medication__dose__text_else_quantity(
    element: dict[str, Any], dose: str | None
) -> None:
    assert ehr_medication({"resourceType": "MedicationRequest", **element})["dose"] == dose


def test_ehr_medication__frequency_note__read__no_instruction() -> None:
    timing = {"code": {"coding": [{"display": "twice daily"}]}}
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "dosage": [{"timing": timing}],
        "note": [{"text": "from the psychiatrist"}],
    }
    found = ehr_medication(res)
    assert (found["frequency"], found["note"]) == ("twice daily", "from the psychiatrist")
    assert found["instruction"] is None


STATUS_AND_INSTRUCTION = [
    (status, instruction)
    for status in ("active", "on_hold", "stopped")
    for instruction in ("continue", "hold", "stop")
]


@pytest.mark.parametrize(("status", "instruction"), STATUS_AND_INSTRUCTION)
def test_edited_medication__status_untouched__clinic_status_and_instruction_stand(
    status: str, instruction: str
) -> None:
    meds = [{"name": "lorazepam", "status": status, "instruction": instruction, "dose": "1 mg"}]
    statement = _of_type(_review(meds), "MedicationStatement")
    statement["dosage"] = [{"text": "2 mg"}]
    found = edited_medication(statement, CTX)
    assert (found["status"], found["instruction"], found["dose"]) == (status, instruction, "2 mg")


def test_edited_medication__ehr_changed_status__ehr_status_wins() -> None:
    meds = [{"name": "lorazepam", "status": "active", "instruction": "hold"}]
    statement = _of_type(_review(meds), "MedicationStatement")
    statement["status"] = "completed"
    found = edited_medication(statement, CTX)
    assert (found["status"], found["fhir_status"], found["instruction"]) == (
        "stopped",
        "completed",
        "hold",
    )
    statement["status"] = "active"  # the EHR took the hold back; our extensions still say it
    assert edited_medication(statement, CTX)["status"] == "active"


def test_edited_medication__ehr_renamed_by_coding_only__display_read() -> None:
    statement = _of_type(_review([{"name": "x", "status": "active"}]), "MedicationStatement")
    statement["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "36437", "display": "sertraline"}]
    }
    found = edited_medication(statement, CTX)
    assert (found["name"], found["rxnorm"]) == ("sertraline", "36437")


def test_ehr_allergy__contract_fields__unknown_severity_dropped() -> None:
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "code": {"coding": [{"system": RXNORM, "code": "7980", "display": "penicillin G"}]},
        "reaction": [
            {"manifestation": [{"coding": [{"display": "Urticaria"}]}], "severity": "fatal"}
        ],
    }
    assert ehr_allergy(res) == {
        "substance": "penicillin G",
        "reaction": "Urticaria",
        "severity": None,
        "rxnorm": "7980",
    }


@pytest.mark.parametrize(
    ("element", "code", "current"),
    [
        ("verificationStatus", "confirmed", True),
        ("verificationStatus", "unconfirmed", True),
        ("verificationStatus", "refuted", False),
        ("verificationStatus", "entered-in-error", False),
        ("clinicalStatus", "active", True),
        ("clinicalStatus", "inactive", False),
        ("clinicalStatus", "resolved", False),
    ],
)
def test_is_current_allergy__refuted_error_inactive_resolved__not_current(
    element: str, code: str, current: bool
) -> None:
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        element: {"coding": [{"code": code}]},
    }
    assert is_current_allergy(res) is current


def test_is_no_known_allergy__our_statement_yes__an_allergy_no() -> None:
    statement = _of_type(_review([], allergies=[]), "AllergyIntolerance")
    allergy = _of_type(_review([], allergies=[{"substance": "latex"}]), "AllergyIntolerance")
    assert is_no_known_allergy(statement, CTX)
    assert not is_no_known_allergy(allergy, CTX)
    assert is_current_allergy(statement)
    assert is_current_allergy(allergy)
