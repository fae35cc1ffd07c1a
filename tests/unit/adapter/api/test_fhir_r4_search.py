"""`/fhir` search as R4 writes it: R4 names per type, modifiers, chains, `_has`, strictness,
POST `_search`, `$everything` by POST and its parameters, compartments, `_summary`.

The store and its data are test_fhir_search's fixtures (`app`, `client`, `stored`),
imported: a test's argument then names the imported fixture (ruff's F811).
"""

# ruff: noqa: F811

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter.store.search_parameters import CUSTOM, TABLE
from tests.unit.adapter.api.conftest import bearer, example, post_encounter
from tests.unit.adapter.api.test_fhir_search import (  # noqa: F401 (fixtures)
    TYPICAL,
    A,
    B,
    _get,
    _ids,
    _matches,
    _patient_id,
    _status,
    app,
    client,
    stored,
)

MRN = "MRN-004211"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LENIENT = {"Prefer": "handling=lenient"}


def _all(client: TestClient, path: str, key: str = A, **headers: str) -> set[str]:
    sep = "&" if "?" in path else "?"
    return set(_ids(_get(client, f"{path}{sep}_count=1000", key, **headers)))


def _refused(client: TestClient, path: str) -> str:
    reply = client.get(path, headers=bearer(A))
    assert reply.status_code == 400, reply.text
    return str(reply.json()["issue"][0]["diagnostics"])


def _encounter_id(client: TestClient, identifier: str = "ENC-2026-1120-001") -> str:
    (encounter,) = _matches(_get(client, f"/fhir/Encounter?identifier={identifier}"))
    return str(encounter["id"])


# --- chains: exactly that patient's resources, of the caller's tenant only ---------------


def test_chain__patient_identifier__exactly_that_patients_observations(
    client: TestClient, stored: dict[str, set[str]]
) -> None:
    # Tenant B holds a patient with the same MRN: never in tenant A's answer.
    assert post_encounter(client, example(TYPICAL), B).status_code == 201
    patient = _patient_id(client)
    by_id = _all(client, f"/fhir/Observation?patient={patient}")

    by_mrn = _all(client, f"/fhir/Observation?patient.identifier={MRN}")

    assert by_mrn == by_id
    assert by_mrn
    assert {f"Observation/{i}" for i in by_mrn} <= stored[A]
    assert _all(client, f"/fhir/Observation?subject:Patient.identifier={MRN}") == by_id
    assert _all(client, f"/fhir/Observation?subject:Patient={patient}") == by_id
    assert _all(client, "/fhir/Observation?patient.identifier=MRN-009876") == set()
    in_b = _all(client, f"/fhir/Observation?patient.identifier={MRN}", B)
    assert in_b
    assert not in_b & by_mrn


def test_chain__patient_name_and_birthdate(client: TestClient, stored: object) -> None:
    patient = _patient_id(client)
    by_id = _all(client, f"/fhir/Condition?patient={patient}")

    assert _all(client, "/fhir/Condition?patient.name=garcia") == by_id
    assert _all(client, "/fhir/Condition?patient.birthdate=1984-03-02") == by_id
    assert _all(client, "/fhir/Condition?patient.birthdate=1984-03-03") == set()


def test_chain__encounter_identifier_and_context(client: TestClient, stored: object) -> None:
    encounter = _encounter_id(client)
    by_context = _all(client, f"/fhir/MedicationAdministration?context=Encounter/{encounter}")
    every = _all(client, "/fhir/MedicationAdministration")

    assert by_context
    assert by_context < every
    chained = "/fhir/MedicationAdministration?context.identifier=ENC-2026-1120-001"
    assert _all(client, chained) == by_context
    observations = _all(client, "/fhir/Observation?encounter.identifier=ENC-2026-1120-001")
    assert observations == _all(client, f"/fhir/Observation?encounter={encounter}")


def test_reverse_chain__has_observation_patient_code(client: TestClient, stored: object) -> None:
    everyone = _all(client, "/fhir/Patient")
    with_heart_rate = _all(client, "/fhir/Patient?_has:Observation:patient:code=8867-4")
    nobody = _all(client, "/fhir/Patient?_has:Observation:patient:code=no-such-code")

    assert with_heart_rate
    assert with_heart_rate <= everyone
    assert nobody == set()


# --- R4 names, by type ----------------------------------------------------------------------


def test_patient__demographics_by_r4_names(client: TestClient, stored: object) -> None:
    patient = _patient_id(client)
    for query in (
        "family=garcia",
        "family=GARCÍA-LÓPEZ",
        "given=ana",
        "name=ANA",
        "birthdate=1984-03-02",
        "birthdate=ap1984-03-01",
        "gender=female",
        "family:exact=García-López",
        "family:contains=lópez",
    ):
        assert patient in _all(client, f"/fhir/Patient?{query}"), query
    assert patient not in _all(client, "/fhir/Patient?family:exact=garcia-lopez")
    assert patient not in _all(client, "/fhir/Patient?gender=male")
    assert patient not in _all(client, "/fhir/Patient?birthdate=sa1984-03-02")


@pytest.mark.parametrize(
    ("resource_type", "query"),
    [
        ("MedicationRequest", "authoredon=le2100-01-01"),
        ("MedicationRequest", "intent=order"),
        ("MedicationAdministration", "effective-time=ge2026-01-01"),
        ("Condition", "recorded-date=ge2000-01-01"),
        ("Condition", "clinical-status=active"),
        ("QuestionnaireResponse", "authored=ge2026-01-01"),
        ("Encounter", "class=AMB"),
        ("Observation", "combo-code=8867-4"),
    ],
)
def test_r4_name__filters_as_r4_defines(
    client: TestClient, stored: object, resource_type: str, query: str
) -> None:
    every = _all(client, f"/fhir/{resource_type}")
    found = _all(client, f"/fhir/{resource_type}?{query}")
    assert found <= every
    param, _, value = query.partition("=")
    for resource in _matches(_get(client, f"/fhir/{resource_type}?{query}&_count=1000")):
        assert resource["resourceType"] == resource_type
    negated = _all(client, f"/fhir/{resource_type}?{param}:missing=true")
    assert not found & negated, value


def test_old_non_r4_meanings__gone(client: TestClient, stored: object) -> None:
    assert "'date'" in _refused(client, "/fhir/MedicationRequest?date=2026")
    assert _status(client, "/fhir/Condition?date=2026") == 400
    assert _status(client, "/fhir/Provenance?date=2026") == 400
    assert _status(client, "/fhir/Provenance?recorded=ge2000") == 200


def test_modifiers__missing_and_not(client: TestClient, stored: object) -> None:
    every = _all(client, "/fhir/Observation")
    heart = _all(client, "/fhir/Observation?code=8867-4")
    not_heart = _all(client, "/fhir/Observation?code:not=8867-4")

    assert heart
    assert not_heart
    assert heart | not_heart == every
    assert not heart & not_heart
    assert _all(client, "/fhir/Observation?subject:missing=false") == every
    assert _all(client, "/fhir/Observation?subject:missing=true") == set()


def test_modifier_identifier__a_reference_by_its_identifier(
    client: TestClient, stored: object
) -> None:
    assert _all(client, "/fhir/Provenance?agent:identifier=urn:x|y") == set()
    assert _status(client, "/fhir/Observation?code:identifier=x") == 400


def test_canonical_reference__questionnaire_by_its_url(client: TestClient, stored: object) -> None:
    every = _all(client, "/fhir/QuestionnaireResponse")
    phq9 = _all(client, "/fhir/QuestionnaireResponse?questionnaire=http://loinc.org/q/44249-1")
    assert phq9
    assert phq9 < every
    assert _all(client, "/fhir/QuestionnaireResponse?questionnaire=urn:x:none") == set()
    assert "questionnaire" in _refused(client, "/fhir/QuestionnaireResponse?questionnaire=q1")


# --- strict by default, lenient on request ---------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("code:text=pain", "'code:text'"),
        ("flavour=sweet", "'flavour'"),
        ("patient.organization=x", "'patient.organization'"),
        ("subject:Group.name=x", "'subject:Group.name'"),
        ("_has:Observation:subject:nope=x", "'_has:Observation:subject:nope'"),
        ("status:exact=final", "'status:exact'"),
    ],
)
def test_unsupported__400_naming_it__lenient_ignores_and_reports(
    client: TestClient, stored: object, query: str, named: str
) -> None:
    assert named in _refused(client, f"/fhir/Observation?{query}")
    bundle = _get(client, f"/fhir/Observation?{query}", **LENIENT)
    (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["fullUrl"].startswith("urn:uuid:")


def test_unsupported_prefix__400(client: TestClient, stored: object) -> None:
    assert "prefix" in _refused(client, "/fhir/Observation?date=xx2026")


# --- POST ---------------------------------------------------------------------------------


def test_post_search__same_answer_as_get(client: TestClient, stored: object) -> None:
    body = f"patient.identifier={MRN}&code=8867-4&_count=2"
    reply = client.post("/fhir/Observation/_search", content=body, headers=bearer(A) | FORM)
    assert reply.status_code == 200, reply.text
    got = _get(client, f"/fhir/Observation?{body}")

    assert _ids(reply.json()) == _ids(got)
    assert reply.json()["total"] == got["total"]
    next_link = next(ln["url"] for ln in reply.json()["link"] if ln["relation"] == "next")
    assert _ids(_get(client, next_link))


def test_post_search__not_a_form__415__unknown_parameter__400(
    client: TestClient, stored: object
) -> None:
    as_json = {"Content-Type": "application/json"}
    reply = client.post("/fhir/Observation/_search", content="{}", headers=bearer(A) | as_json)
    assert reply.status_code == 415
    bad = client.post("/fhir/Observation/_search", content="nope=1", headers=bearer(A) | FORM)
    assert bad.status_code == 400


def _parameters(**values: Any) -> str:
    parameter = [
        {"name": name.replace("type_", "_type").replace("count_", "_count"), key: value}
        for name, (key, value) in values.items()
    ]
    return json.dumps({"resourceType": "Parameters", "parameter": parameter})


def test_post_everything__parameters_body__same_as_get(client: TestClient, stored: object) -> None:
    patient = _patient_id(client)
    fhir_json = {"Content-Type": "application/fhir+json"}
    body = _parameters(type_=("valueCode", "Observation"), count_=("valueInteger", 5))
    reply = client.post(
        f"/fhir/Patient/{patient}/$everything", content=body, headers=bearer(A) | fhir_json
    )
    assert reply.status_code == 200, reply.text
    got = _get(client, f"/fhir/Patient/{patient}/$everything?_type=Observation&_count=5")

    assert _ids(reply.json()) == _ids(got)
    assert {e["resource"]["resourceType"] for e in reply.json()["entry"]} == {"Observation"}
    empty = client.post(f"/fhir/Patient/{patient}/$everything", headers=bearer(A))
    assert empty.status_code == 200


def test_everything__count_0_total_only__start_end_narrow(
    client: TestClient, stored: object
) -> None:
    patient = _patient_id(client)
    whole = _get(client, f"/fhir/Patient/{patient}/$everything?_count=1000")
    only_total = _get(client, f"/fhir/Patient/{patient}/$everything?_count=0")
    before = _get(client, f"/fhir/Patient/{patient}/$everything?end=2000-01-01&_count=1000")

    assert only_total["total"] == whole["total"]
    assert "entry" not in only_total
    assert [ln["relation"] for ln in only_total["link"]] == ["self"]
    assert 0 < before["total"] < whole["total"]
    assert patient in _ids(before)
    assert _status(client, f"/fhir/Patient/{patient}/$everything?_type=Nope") == 400
    assert _status(client, f"/fhir/Patient/{patient}/$everything?flavour=1") == 400


def test_type_history__count_0__no_entry_no_next(client: TestClient, stored: object) -> None:
    bundle = _get(client, "/fhir/Observation/_history?_count=0")
    assert bundle["total"] > 0
    assert "entry" not in bundle
    assert [ln["relation"] for ln in bundle["link"]] == ["self"]


def test_compartment__patient_observations__same_as_patient_search(
    client: TestClient, stored: object
) -> None:
    patient = _patient_id(client)
    compartment = _all(client, f"/fhir/Patient/{patient}/Observation?code=8867-4")

    assert compartment == _all(client, f"/fhir/Observation?patient={patient}&code=8867-4")
    assert _all(client, f"/fhir/Patient/{patient}/Patient") == {patient}
    assert _all(client, f"/fhir/Patient/{patient}/Observation", B) == set()
    assert _status(client, f"/fhir/Patient/{patient}/Organization") == 404


# --- _summary, _elements ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kept", "dropped"),
    [
        ("_summary=true", {"code", "status", "subject"}, {"category"}),
        ("_summary=data", {"code", "category"}, {"text"}),
        ("_summary=text", {"code", "status"}, {"subject", "category"}),
        ("_elements=subject", {"subject", "code", "status"}, {"category"}),
    ],
)
def test_summary_and_elements__subsetted_and_tagged(
    client: TestClient, stored: object, query: str, kept: set[str], dropped: set[str]
) -> None:
    (resource,) = _matches(_get(client, f"/fhir/Observation?code=8867-4&_count=1&{query}"))
    assert kept <= set(resource)
    assert not dropped & set(resource)
    assert {"id", "meta"} <= set(resource)
    assert {"code": "SUBSETTED"}.items() <= resource["meta"]["tag"][-1].items()


# --- CapabilityStatement, SearchParameter -------------------------------------------------


def test_capability__every_parameter_with_its_definition(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for resource_type, params in TABLE.items():
        declared = {p["name"]: p["definition"] for p in by_type[resource_type]["searchParam"]}
        assert set(params) <= set(declared)
        for name in params:
            if (resource_type, name) in CUSTOM:
                assert declared[name].endswith(f"/fhir/SearchParameter/{resource_type}-{name}")
            else:
                assert declared[name].startswith("http://hl7.org/fhir/SearchParameter/")
    assert by_type["MedicationAdministration"]["searchParam"]
    definitions = {p["name"]: p["definition"] for p in by_type["Observation"]["searchParam"]}
    assert definitions["patient"] == "http://hl7.org/fhir/SearchParameter/clinical-patient"


def test_search_parameter__ours_served_by_the_definition_named(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    flag = {r["type"]: r for r in statement["rest"][0]["resource"]}["Flag"]
    definition = next(p["definition"] for p in flag["searchParam"] if p["name"] == "status")
    path = definition[definition.index("/fhir/") :]

    reply = client.get(path)

    assert reply.status_code == 200
    assert reply.json()["resourceType"] == "SearchParameter"
    assert reply.json()["url"] == definition
    assert reply.json()["code"] == "status"
    listed = client.get("/fhir/SearchParameter").json()
    assert listed["total"] == len(CUSTOM)
    assert client.get("/fhir/SearchParameter/Nope-x").status_code == 404


def test_esketamine_tenant_b__sees_its_own_only(client: TestClient, stored: object) -> None:
    assert _all(client, "/fhir/Patient?family=chen", B)
    assert _all(client, "/fhir/Patient?family=chen") == set()
