"""Every R4 search parameter `/fhir` advertises filters as R4 defines it: the same search on
`/fhir` and on the sandbox (HAPI FHIR), both holding the same pushed data, finds the same
resources.

The service (`adapter serve`, once on SQLite and once on PostgreSQL) receives several
patients' encounters (tests/integration/r4_search_data.py) and pushes them to the sandbox.
Each case (tests/integration/r4_search_cases.py) is one type and one parameter of our
CapabilityStatement with an R4 definition, or one of its modifiers, date prefixes or
chains; its value is taken from the data so that it matches some resources of the type and
not others. Results are compared as our `Type/id` keys, the sandbox's ids mapped back
through the submissions' `ehr_references`. What HAPI refuses although R4 defines it
(`:identifier`, `:contains` as the sandbox is configured, the `ap` prefix) is checked
against ids computed from the resources instead, the reason given in the case.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from adapter.api.fhir.capability import capability_statement
from adapter.api.fhir.common import SERVED_TYPES
from adapter.api.fhir.criteria import REFERENCE_TARGETS
from adapter.store.search_parameters import CUSTOM
from tests.integration import r4_search_cases as cases
from tests.integration.r4_search_data import (
    PAGE,
    Pushed,
    for_sandbox,
    post_and_push,
    search,
    served,
)
from tests.integration.support import FHIR_JSON
from tests.integration.test_clinic_api import serving

pytestmark = pytest.mark.integration

KEY = f"r4-search-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {KEY}"}
# One namespace and tenant (our identifiers' systems hold both) for both stores: the second
# service's push updates the same sandbox resources (conditional updates by identifier),
# so the sandbox's answers, asked once, hold for both.
NAMESPACE = f"https://fhir.r4cmp-{uuid.uuid4().hex[:10]}.example"
TENANT = f"r4-{uuid.uuid4().hex[:8]}"
_sandbox_answers: dict[tuple[str, tuple[tuple[str, str], ...]], frozenset[str]] = {}


class Store:
    def __init__(self, url: str, pushed: Pushed) -> None:
        self.url = url
        self.pushed = pushed


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The service with the data posted and pushed, and what it serves."""
    folder = tmp_path_factory.mktemp(f"r4-{request.param}")
    database = (
        f"sqlite:///{folder / 'adapter.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    keys = folder / "keys.json"
    scopes = ["clinic/encounters.write", "clinic/submissions.read", "system/*.rs"]
    keys.write_text(json.dumps([{"key": KEY, "tenant": TENANT, "scopes": scopes}]))
    settings = {
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": NAMESPACE,
        "ADAPTER_API_KEYS_FILE": str(keys),
    }
    with serving(settings, folder / "service.log") as url:
        ehr_of = post_and_push(url, AUTH)
        resources = served(url, AUTH, list(SERVED_TYPES))
        ours_of = {ehr: ours for ours, ehr in ehr_of.items()}
        yield Store(url, Pushed(resources, ehr_of, ours_of))


def _ours(store: Store, resource_type: str, pairs: tuple[tuple[str, str], ...]) -> frozenset[str]:
    """Our keys found by GET, checked to be those POST `_search` finds."""
    url = f"{store.url}/fhir/{resource_type}"
    asked = [*pairs, ("_count", str(PAGE))]
    found = _keys(resource_type, search(url, asked, AUTH))
    assert _keys(resource_type, search(url, asked, AUTH, post=True)) == found, "POST _search"
    return found


def _theirs(
    store: Store, base: str, resource_type: str, pairs: tuple[tuple[str, str], ...]
) -> frozenset[str]:
    """Our keys of what the sandbox finds (asked by POST `_search`: the `_id` list is long)."""
    asked = (*for_sandbox(store.pushed, resource_type, pairs), ("_count", str(PAGE)))
    if (resource_type, asked) not in _sandbox_answers:
        found = search(f"{base}/{resource_type}", list(asked), {}, post=True)
        ehr_keys = _keys(resource_type, found)
        unknown = {k for k in ehr_keys if k not in store.pushed.ours_of}
        assert not unknown, f"the sandbox found resources not pushed here: {sorted(unknown)[:3]}"
        _sandbox_answers[resource_type, asked] = frozenset(
            store.pushed.ours_of[k] for k in ehr_keys
        )
    return _sandbox_answers[resource_type, asked]


def _keys(resource_type: str, found: list[dict[str, Any]]) -> frozenset[str]:
    assert all(res["resourceType"] == resource_type for res in found)
    keys = [f"{resource_type}/{res['id']}" for res in found]
    assert len(keys) == len(set(keys)), "a resource found twice"
    return frozenset(keys)


def _check(store: Store, base: str, case: cases.Case) -> None:
    assert case.queries, case
    for query in case.queries:
        ours = _ours(store, case.resource_type, query.ours)
        if query.reason:  # HAPI cannot be asked: see cases.HAPI_REFUSES
            assert ours == query.expected, (query.ours, query.reason)
        else:
            theirs = _theirs(store, base, case.resource_type, query.ours)
            assert ours == theirs, (
                query.ours,
                f"only on /fhir: {sorted(ours - theirs)[:3]}",
                f"only on the sandbox: {sorted(theirs - ours)[:3]}",
            )


@pytest.mark.parametrize(
    ("resource_type", "label"),
    [*cases.CASES, *cases.CHAINS, *cases.COMBINED],
    ids=[f"{t}-{label}" for t, label in [*cases.CASES, *cases.CHAINS, *cases.COMBINED]],
)
def test_r4_search__same_resources_as_the_sandbox(
    store: Store, fhir_base_url: str, resource_type: str, label: str
) -> None:
    _check(store, fhir_base_url, cases.build(store.pushed, resource_type, label))


def _includes() -> list[tuple[str, str, str]]:
    """(type, `_include` or `_revinclude`, value) the CapabilityStatement offers through a
    parameter with an R4 definition (ours, HAPI does not know): every `_include`; the
    `_revinclude`s of the parameters naming that one type, and `Provenance:target` (a
    parameter that may name any type is offered on all 18: one of them is enough)."""
    statement: Any = capability_statement("http://127.0.0.1/fhir")
    return [
        (resource["type"], kind, value)
        for resource in statement["rest"][0]["resource"]
        for kind, key in (("_include", "searchInclude"), ("_revinclude", "searchRevInclude"))
        for value in resource.get(key, [])
        if tuple(value.split(":")[:2]) not in CUSTOM
        and (
            kind == "_include"
            or value == "Provenance:target"
            or REFERENCE_TARGETS.get(value.split(":")[1]) == resource["type"]
        )
    ]


@pytest.mark.parametrize(
    ("resource_type", "kind", "value"), _includes(), ids=[f"{t}-{k}={v}" for t, k, v in _includes()]
)
def test_r4_include__same_resources_as_the_sandbox(
    store: Store, fhir_base_url: str, resource_type: str, kind: str, value: str
) -> None:
    """The resources `_include` and `_revinclude` add to a page of some of the type's."""
    some = ",".join(sorted(store.pushed.of_type(resource_type))[:6])
    asked = [("_id", some), (kind, value), ("_count", str(PAGE))]
    url = f"{store.url}/fhir/{resource_type}"
    ours = {f"{r['resourceType']}/{r['id']}" for r in search(url, asked, AUTH, mode="include")}
    theirs_asked = [*for_sandbox(store.pushed, resource_type, (asked[0],)), *asked[1:]]
    found = search(f"{fhir_base_url}/{resource_type}", theirs_asked, {}, post=True, mode="include")
    theirs = {store.pushed.ours_of[f"{r['resourceType']}/{r['id']}"] for r in found}
    assert ours == theirs


def test_capability_statement__the_r4_parameters_tested_here(store: Store) -> None:
    """The cases cover what GET /fhir/metadata advertises (not only the module's table)."""
    reply = requests.get(f"{store.url}/fhir/metadata", headers=FHIR_JSON, timeout=60)
    assert reply.status_code == 200
    served_r4 = {
        (resource["type"], param["name"])
        for resource in reply.json()["rest"][0]["resource"]
        for param in resource.get("searchParam", [])
        if str(param.get("definition", "")).startswith(cases.R4)
    }
    assert served_r4 == {(t, n) for t, n, _ in cases.r4_parameters()}
    assert served_r4 <= set(cases.CASES)


# Where each type names its patient (R4's `patient` parameter); `subject` elsewhere.
_PATIENT_ELEMENT = {
    "AllergyIntolerance": "patient",
    "Consent": "patient",
    "DetectedIssue": "patient",
    "Device": "patient",
    "Provenance": "target",
}
_WITH_PATIENT = sorted({t for t, name, _ in cases.r4_parameters() if name == "patient"})


@pytest.mark.parametrize("resource_type", _WITH_PATIENT)
def test_chained_mrn__exactly_that_patients_resources(store: Store, resource_type: str) -> None:
    """`{type}?patient.identifier={system}|{mrn}`, for each patient: every resource about
    that patient and no other patient's (the issue found 9 patients' Observations for one)."""
    element = _PATIENT_ELEMENT.get(resource_type, "subject")
    found_for: dict[str, frozenset[str]] = {}
    for patient_id, patient in store.pushed.of_type("Patient").items():
        (mrn,) = [i for i in patient["identifier"] if i["system"].endswith("/sid/mrn")]
        pairs = (("patient.identifier", f"{mrn['system']}|{mrn['value']}"),)
        found_for[f"Patient/{patient_id}"] = _ours(store, resource_type, pairs)
    for reference, found in found_for.items():
        assert found == store.pushed.where(resource_type, _about(reference, element)), reference
    every = [key for found in found_for.values() for key in found]
    assert len(every) == len(set(every)), "a resource found for two patients"
    # Our Devices (the adapter) and Provenances (targets: the records) name no patient.
    assert every or resource_type in ("Device", "Provenance"), "nothing about any patient"


def _about(reference: str, element: str) -> Callable[[dict[str, Any]], bool]:
    return lambda resource: reference in _cited(resource, element)


def _cited(resource: dict[str, Any], element: str) -> set[str]:
    held = resource.get(element, [])
    return {r["reference"] for r in (held if isinstance(held, list) else [held])}


# R4's CompartmentDefinition/patient for the types we serve: the parameters any of which
# naming the Patient puts a resource in its compartment.
PATIENT_COMPARTMENT = {
    "AdverseEvent": ("subject",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "CarePlan": ("patient", "performer"),
    "Condition": ("patient", "asserter"),
    "Consent": ("patient",),
    "DetectedIssue": ("patient",),
    "Encounter": ("patient",),
    "Flag": ("patient",),
    "MedicationAdministration": ("patient", "performer", "subject"),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("patient", "performer"),
    "Provenance": ("patient",),
    "QuestionnaireResponse": ("subject", "author"),
}


@pytest.mark.parametrize("resource_type", sorted(PATIENT_COMPARTMENT))
def test_patient_compartment__the_r4_compartment_as_the_sandbox_finds_it(
    store: Store, fhir_base_url: str, resource_type: str
) -> None:
    """`Patient/{id}/{type}` (HAPI's JPA server does not serve compartment searches: it is
    asked each of R4's compartment parameters of the type, and their answers joined)."""
    for patient_id in sorted(store.pushed.of_type("Patient")):
        url = f"{store.url}/fhir/Patient/{patient_id}/{resource_type}"
        ours = _keys(resource_type, search(url, [("_count", str(PAGE))], AUTH))
        reference = f"Patient/{patient_id}"
        theirs = frozenset().union(
            *(
                _theirs(store, fhir_base_url, resource_type, ((param, reference),))
                for param in PATIENT_COMPARTMENT[resource_type]
            )
        )
        assert ours == theirs, patient_id


@pytest.mark.parametrize("resource_type", ["Organization", "Practitioner", "PractitionerRole"])
def test_patient_compartment__types_outside_it__404(store: Store, resource_type: str) -> None:
    patient_id = sorted(store.pushed.of_type("Patient"))[0]
    url = f"{store.url}/fhir/Patient/{patient_id}/{resource_type}"
    assert requests.get(url, headers=AUTH | FHIR_JSON, timeout=60).status_code == 404
