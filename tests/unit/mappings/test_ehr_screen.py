"""`screen_ehr_medications`: the EHR's medication list screened like the clinic's review."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mappings.context import MappingContext
from mappings.jsontypes import Resource
from mappings.medication_review import screen_ehr_medications
from tests.unit.mappings.fhircheck import assert_model_equivalent

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
Res = dict[str, Any]
AT = "2026-11-25T07:30:00Z"


def _entry(
    status: str, code: str = "8123", name: str = "phenelzine", kind: str = "MedicationStatement"
) -> Resource:
    return {
        "resourceType": kind,
        "id": f"k-{code}",
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code}],
            "text": name,
        },
        "subject": {"reference": "Patient/p"},
        "dateAsserted": "2026-11-24T10:00:00Z",
    }


def _screen(entries: list[Resource], stored: list[Resource] | None = None) -> list[Res]:
    return cast(list[Res], screen_ehr_medications(entries, stored or [], "MRN-1", AT, CTX))


def test_screen__ehr_maoi__one_high_issue_implicating_the_entry() -> None:
    (issue,) = _screen([_entry("active")])
    assert issue["severity"] == "high"
    assert issue["implicated"] == [{"reference": "MedicationStatement/k-8123"}]
    assert issue["identifiedDateTime"] == "2026-11-24T10:00:00Z"
    assert "phenelzine" in issue["detail"]
    assert "mitigation" not in issue
    assert_model_equivalent(issue)


@pytest.mark.parametrize("status", ["stopped", "completed", "not-taken", "entered-in-error"])
def test_screen__entry_no_longer_taken__no_issue(status: str) -> None:
    assert _screen([_entry(status)]) == []


def test_screen__request_on_hold__still_screened() -> None:
    (issue,) = _screen([_entry("on-hold", "321988", "escitalopram", "MedicationRequest")])
    assert issue["severity"] == "low"


def test_screen__cause_gone__stored_issue_resolved_once() -> None:
    (raised,) = _screen([_entry("active")])
    (resolved,) = _screen([_entry("stopped")], [raised])
    (mitigation,) = resolved["mitigation"]
    assert mitigation["action"]["coding"][0]["code"] == "13"
    assert mitigation["date"] == AT
    assert_model_equivalent(resolved)
    later = screen_ehr_medications([], [resolved], "MRN-1", "2027-01-01T00:00:00+00:00", CTX)
    assert cast(list[Res], later)[0]["mitigation"] == resolved["mitigation"]


def test_screen__taken_again__issue_active_again() -> None:
    (raised,) = _screen([_entry("active")])
    (resolved,) = _screen([], [raised])
    (again,) = _screen([_entry("active")], [resolved])
    assert "mitigation" not in again
    assert again["id"] == raised["id"]
