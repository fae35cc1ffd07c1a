"""The EHR's copy of a resource in our terms: references to what we hold become ours."""

from __future__ import annotations

from adapter.store.search_index import index_rows
from adapter.sync.pull.ehr_view import EhrRef, content_digest, holders, parse_reference, to_local
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from mappings.jsontypes import JsonObject
from tests.unit.mappings.fhircheck import load_example

BASE = "https://ehr.test/fhir"


def test_parse_reference__relative_absolute_versioned_and_foreign() -> None:
    assert parse_reference("Patient/p1", BASE) == EhrRef("Patient", "p1")
    assert parse_reference(f"{BASE}/Patient/p1", BASE) == EhrRef("Patient", "p1")
    assert parse_reference("Patient/p1/_history/3", BASE) == EhrRef("Patient", "p1")
    assert parse_reference("https://other.test/fhir/Patient/p1", BASE) is None
    assert parse_reference("#contained", BASE) is None
    assert parse_reference("urn:uuid:0b1a", BASE) is None


def test_to_local__ours_rewritten_unknown_made_absolute_meta_dropped_id_ours() -> None:
    theirs: JsonObject = {
        "resourceType": "MedicationStatement",
        "id": "s9",
        "meta": {"versionId": "2", "lastUpdated": "2026-11-25T10:00:00Z"},
        "subject": {"reference": "Patient/p1", "display": "kept"},
        "informationSource": {"reference": "Practitioner/dr7"},
        "derivedFrom": [{"reference": "#c1"}, {"reference": f"{BASE}/Observation/o4/_history/1"}],
    }
    ours = {EhrRef("Patient", "p1"): "kabc", EhrRef("Observation", "o4"): "kobs"}

    local = to_local(theirs, "kstatement", ours, BASE)

    assert local == {
        "resourceType": "MedicationStatement",
        "id": "kstatement",
        "subject": {"reference": "Patient/kabc", "display": "kept"},
        "informationSource": {"reference": f"{BASE}/Practitioner/dr7"},
        "derivedFrom": [{"reference": "#c1"}, {"reference": "Observation/kobs"}],
    }
    assert "meta" in theirs, "the EHR's copy is not changed"


def test_content_digest__ignores_server_elements_and_key_order() -> None:
    a: JsonObject = {
        "resourceType": "Patient",
        "id": "1",
        "meta": {"versionId": "1"},
        "gender": "female",
        "active": True,
    }
    b: JsonObject = {
        "active": True,
        "resourceType": "Patient",
        "gender": "female",
        "id": "2",
        "text": {"status": "generated"},
    }
    assert content_digest(a) == content_digest(b)
    assert content_digest(a) != content_digest({**a, "gender": "male"})


def test_holders__their_references_index_a_resource_as_a_walk_of_it_does() -> None:
    sub = load_example("typical-ketamine-infusion")
    for res in map_submission(sub, MappingContext()):
        cited = [str(h["reference"]) for h in holders(res)]
        kind = str(res["resourceType"])
        assert set(index_rows(kind, res, cited)) == set(index_rows(kind, res)), kind
