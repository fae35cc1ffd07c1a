from __future__ import annotations

import pytest

from mappings.common.people import (
    map_device,
    map_organization,
    map_patient,
    map_provider,
    unmap_patient,
    unmap_provider,
)
from mappings.context import MappingContext
from mappings.contract import Patient, Provider
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, assert_model_equivalent, load_example
from tests.unit.mappings.jsonpick import at, list_at, obj_at

CTX = MappingContext(namespace="https://fhir.test-clinic.example")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_patient__examples__round_trip_and_models_accept(name: str) -> None:
    patient = load_example(name).patient
    res = map_patient(patient, CTX)
    assert_model_equivalent(res)
    assert unmap_patient([res], patient.mrn, CTX) == patient


def test_map_patient__mrn_identifier__typed_mr_under_namespace() -> None:
    res = map_patient(load_example("typical-ketamine-infusion").patient, CTX)
    ident = obj_at(res, "identifier", 0)
    assert ident["system"] == "https://fhir.test-clinic.example/sid/mrn"
    assert ident["value"] == "MRN-004211"
    assert at(ident, "type", "coding", 0, "code") == "MR"
    assert "MRN-004211" not in str(res["id"])


def test_map_patient__address_and_telecom__kept() -> None:
    res = map_patient(load_example("typical-ketamine-infusion").patient, CTX)
    assert res["address"] == [
        {
            "line": ["12 Elm St", "Apt 4"],
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62704",
            "country": "US",
        }
    ]
    assert res["telecom"] == [{"system": "phone", "value": "+1-555-010-4477"}]


def test_unmap_patient__ehr_returned_copy__still_found_by_identifier() -> None:
    patient = load_example("stopped-infusion").patient
    res = dict(map_patient(patient, CTX))
    res["id"] = "12345"
    res["meta"] = {"versionId": "3", "lastUpdated": "2026-11-23T10:00:00Z"}
    res = dict(reversed(list(res.items())))
    assert unmap_patient([res], patient.mrn, CTX) == patient


@pytest.mark.parametrize(
    ("role", "snomed", "nucc"),
    [
        ("anesthesiologist", "88189002", "207L00000X"),
        ("registered_nurse", "224535009", "163W00000X"),
        ("psychiatrist", "80584001", "2084P0800X"),
        ("physician", "309343006", None),
        ("nurse_anesthetist", None, "367500000X"),
    ],
)
def test_map_provider__each_role__coded_and_round_trips(
    role: str, snomed: str | None, nucc: str | None
) -> None:
    provider = Provider.model_validate(
        {"provider_id": "PRV-1", "name": "A. Person", "role": role, "npi": "1234567893"}
    )
    practitioner, practitioner_role = map_provider(provider, CTX)
    assert_model_equivalent(practitioner)
    assert_model_equivalent(practitioner_role)
    codes = [at(c, "code") for c in list_at(practitioner_role, "code", 0, "coding")]
    assert (snomed in codes) if snomed else len(codes) == 1
    specialty = practitioner_role.get("specialty")
    assert (at(specialty, 0, "coding", 0, "code") == nucc) if nucc else specialty is None
    assert unmap_provider([practitioner, practitioner_role], "PRV-1", CTX) == provider


@pytest.mark.parametrize("acls", [True, False, None])
def test_map_provider__acls_true_false_absent__round_trip(acls: bool | None) -> None:
    provider = Provider.model_validate(
        {"provider_id": "PRV-2", "name": "B", "role": "registered_nurse", "acls_certified": acls}
    )
    resources = map_provider(provider, CTX)
    assert ("qualification" in resources[0]) is bool(acls)
    assert unmap_provider(resources, "PRV-2", CTX) == provider


def test_organization_and_device__models_accept() -> None:
    assert_model_equivalent(map_organization(CTX))
    assert_model_equivalent(map_device(CTX))


def test_patient_round_trip__unicode_name() -> None:
    patient = Patient.model_validate(
        {
            "mrn": "M.1",
            "given_name": "Zoë 李",
            "family_name": "Ó Súilleabháin",
            "birth_date": "2000-01-01",
            "sex": "other",
        }
    )
    assert unmap_patient([map_patient(patient, CTX)], "M.1", CTX) == patient
