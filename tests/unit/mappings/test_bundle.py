from __future__ import annotations

from mappings.common import identity
from mappings.common.bundle import conditional_url, resource_identity, transaction_bundle
from mappings.common.people import map_patient
from mappings.context import MappingContext
from mappings.encounter.visit import map_encounter
from mappings.jsontypes import Resource
from tests.unit.mappings.fhircheck import assert_model_equivalent, load_example
from tests.unit.mappings.jsonpick import at, list_at, obj_at, objs_at, str_at

CTX = MappingContext(namespace="https://fhir.test-clinic.example")


def _pair() -> list[Resource]:
    sub = load_example("typical-ketamine-infusion")
    return [
        map_patient(sub.patient, CTX),
        map_encounter(sub.encounter_id, sub.patient.mrn, sub.status, sub.start, sub.end, CTX),
    ]


def test_transaction_bundle__entries_are_conditional_puts_on_identifier() -> None:
    bundle = transaction_bundle(_pair(), CTX)
    assert_model_equivalent(bundle)
    requests = [at(e, "request") for e in list_at(bundle, "entry")]
    assert requests[0] == {
        "method": "PUT",
        "url": "Patient?identifier=https://fhir.test-clinic.example/sid/mrn|MRN-004211",
    }
    assert all(at(r, "method") == "PUT" for r in requests)


def test_transaction_bundle__internal_reference__rewritten_to_fullurl() -> None:
    bundle = transaction_bundle(_pair(), CTX)
    patient_entry, encounter_entry = objs_at(bundle, "entry")
    assert at(encounter_entry, "resource", "subject", "reference") == patient_entry["fullUrl"]
    assert str_at(patient_entry, "fullUrl").startswith("urn:uuid:")
    assert "id" not in obj_at(patient_entry, "resource")


def test_transaction_bundle__external_reference__becomes_conditional_reference() -> None:
    sub = load_example("typical-ketamine-infusion")
    encounter = map_encounter(sub.encounter_id, "MRN-004211", "finished", sub.start, None, CTX)
    bundle = transaction_bundle([encounter], CTX, external=[identity.patient(CTX, "MRN-004211")])
    subject = at(bundle, "entry", 0, "resource", "subject", "reference")
    assert subject == "Patient?identifier=https://fhir.test-clinic.example/sid/mrn|MRN-004211"


def test_transaction_bundle__same_input__identical_output() -> None:
    assert transaction_bundle(_pair(), CTX) == transaction_bundle(_pair(), CTX)


def test_conditional_url__unsafe_characters__percent_encoded() -> None:
    ident = identity.Identity("Patient", "https://x.example/sid/mrn", "a b&c")
    assert conditional_url(ident) == "Patient?identifier=https://x.example/sid/mrn|a%20b%26c"


def test_resource_identity__round_trips_the_identity_used_to_build() -> None:
    patient = _pair()[0]
    assert resource_identity(patient, CTX) == identity.patient(CTX, "MRN-004211")
