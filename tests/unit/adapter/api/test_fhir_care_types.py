"""The care records' types on `/fhir`: read, searched, labelled, and only by their tenant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.adapter.api.conftest import bearer, example, post_encounter, two_tenants

A = "care-types-of-a-0123456789abcdef"
B = "care-types-of-b-0123456789abcdef"
CARE_TYPES = ("Consent", "CarePlan", "Medication", "Questionnaire", "QuestionnaireResponse")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from two_tenants(tmp_path, A, B)


@pytest.fixture
def created(client: TestClient) -> list[str]:
    reply = post_encounter(client, example("esketamine-rems-session"), A)
    assert reply.status_code == 201, reply.text
    return [ref for ref in reply.json()["created"] if ref.split("/")[0] in CARE_TYPES]


def test_care_types__each_read_on_fhir_with_security_labels(
    client: TestClient, created: list[str]
) -> None:
    assert sorted(ref.split("/")[0] for ref in created) == sorted(CARE_TYPES)
    for ref in created:
        reply = client.get(f"/fhir/{ref}", headers=bearer(A))
        assert reply.status_code == 200, ref
        assert reply.json()["meta"]["security"], ref


def test_care_types__another_tenant__404(client: TestClient, created: list[str]) -> None:
    for ref in created:
        assert client.get(f"/fhir/{ref}", headers=bearer(B)).status_code == 404, ref


@pytest.mark.parametrize(
    ("query", "resource_type"),
    [
        ("Consent?scope=treatment", "Consent"),
        ("CarePlan?status=active&intent=plan", "CarePlan"),
        ("Medication?lot-number=KJ4471B", "Medication"),
        ("Medication?code=http://hl7.org/fhir/sid/ndc|50458-028-02", "Medication"),
        ("Questionnaire?name=SpravatoRemsPatientMonitoring", "Questionnaire"),
    ],
)
def test_care_types__searched_by_their_r4_parameters(
    client: TestClient, created: list[str], query: str, resource_type: str
) -> None:
    reply = client.get(f"/fhir/{query}", headers=bearer(A))

    assert reply.status_code == 200, reply.text
    found = [e["resource"]["resourceType"] for e in reply.json().get("entry", [])]
    assert found == [resource_type]
    other = client.get(f"/fhir/{query}", headers=bearer(B)).json()
    assert other.get("entry", []) == []
