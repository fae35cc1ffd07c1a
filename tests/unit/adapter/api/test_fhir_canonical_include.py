"""`_include=QuestionnaireResponse:questionnaire`: the Questionnaire a response names by its
canonical URL, as the sandbox includes it, and only the caller's tenant's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.adapter.api.conftest import bearer, example, post_encounter, two_tenants

A = "canonical-include-of-a-0123456789abcdef"
B = "canonical-include-of-b-0123456789abcdef"
INCLUDE = "/fhir/QuestionnaireResponse?_include=QuestionnaireResponse:questionnaire"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # One shared namespace: both tenants' REMS Questionnaires have the same canonical URL.
    yield from two_tenants(tmp_path, A, B, tenant_namespaces="shared")


def _entries(client: TestClient, key: str, mode: str) -> list[dict[str, Any]]:
    reply = client.get(INCLUDE, headers=bearer(key))
    assert reply.status_code == 200, reply.text
    return [e["resource"] for e in reply.json().get("entry", []) if e["search"]["mode"] == mode]


def test_include_questionnaire__rems_response__its_questionnaire_included(
    client: TestClient,
) -> None:
    assert post_encounter(client, example("esketamine-session"), A).status_code == 201

    responses = _entries(client, A, "match")
    (included,) = _entries(client, A, "include")

    assert included["resourceType"] == "Questionnaire"
    assert included["url"] in {r["questionnaire"] for r in responses}


def test_include_questionnaire__same_url_in_two_tenants__only_the_callers(
    client: TestClient,
) -> None:
    assert post_encounter(client, example("esketamine-session"), A).status_code == 201
    assert post_encounter(client, example("esketamine-rems-session"), B).status_code == 201

    mine = _entries(client, A, "include")
    theirs = _entries(client, B, "include")

    assert len(mine) == len(theirs) == 1
    assert mine[0]["url"] == theirs[0]["url"]
    assert mine[0]["id"] != theirs[0]["id"]


def test_include_questionnaire__loinc_canonical_without_a_questionnaire__nothing_included(
    client: TestClient,
) -> None:
    assert post_encounter(client, example("typical-ketamine-infusion"), A).status_code == 201

    assert _entries(client, A, "match")
    assert _entries(client, A, "include") == []
