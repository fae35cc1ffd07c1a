"""The search index rows of a resource: what each parameter reads, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapter.store.search_index import (
    REFERENCES,
    IndexRow,
    index_rows,
    index_values,
    normalised,
    references_in,
)
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from mappings.jsontypes import Resource
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, load_example

LOINC = "http://loinc.org"
OBSERVATION = {
    "resourceType": "Observation",
    "identifier": [{"system": "urn:s", "value": "a1"}, {"value": "a2"}, {"system": "urn:s"}],
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "8867-4"}, {"code": "hr"}, {"display": "x"}]},
    "category": [
        {"coding": [{"system": "urn:c", "code": "vital-signs"}]},
        {"coding": [{"system": "urn:c", "code": "vital-signs"}]},
    ],
    "subject": {"reference": "Group/g1"},
    "encounter": {"reference": "Encounter/e1"},
    "effectiveDateTime": "2026-11-20T10:00-05:00",
    "derivedFrom": [{"reference": "Observation/o2"}, {"reference": "https://x.test/fhir/P/1"}],
}


def test_index_rows__tokens_references_and_dates_of_an_observation() -> None:
    at = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

    rows = index_rows("Observation", OBSERVATION)

    own = [r for r in rows if r.param != REFERENCES]
    assert set(own) >= {
        IndexRow("identifier", "urn:s", "a1"),
        IndexRow("identifier", None, "a2"),
        IndexRow("status", None, "final"),
        IndexRow("code", LOINC, "8867-4"),
        IndexRow("code", None, "hr"),
        IndexRow("category", "urn:c", "vital-signs"),
        IndexRow("subject", None, "Group/g1"),
        IndexRow("encounter", None, "Encounter/e1"),
        IndexRow("date", date_lo=at, date_hi=at + timedelta(minutes=1)),
        IndexRow("combo-code", LOINC, "8867-4"),
    }
    assert len(own) == len(set(own))
    cited = sorted(str(r.value) for r in rows if r.param == REFERENCES)
    assert cited == ["Encounter/e1", "Group/g1", "Observation/o2"]


def test_index_rows__patient_only_names_a_patient_and_a_period_may_be_open() -> None:
    encounter = {"resourceType": "Encounter", "period": {"start": "2026-11"}}
    flag = {"resourceType": "Flag", "subject": {"reference": "Patient/p1"}}

    (period,) = index_rows("Encounter", encounter, references=[])

    assert period == IndexRow(
        "date",
        date_lo=datetime(2026, 11, 1, tzinfo=UTC),
        date_hi=datetime(9999, 12, 31, tzinfo=UTC),
    )
    assert IndexRow("patient", None, "Patient/p1") in index_rows("Flag", flag)
    assert not [r for r in index_rows("Observation", OBSERVATION) if r.param == "patient"]


def test_index_values__rows_of_the_index_rows_with_the_resource_and_tenant() -> None:
    rows = index_rows("Observation", OBSERVATION)

    values = index_values(7, "t1", "Observation", OBSERVATION)

    assert values == [(7, "t1", "Observation", *vars(r).values()) for r in rows]


def test_index_rows__a_pull_provenance__target_recorded_agent_identifier_entity() -> None:
    provenance = {
        "resourceType": "Provenance",
        "id": "kprov",
        "target": [{"reference": "Observation/kobs/_history/3"}],
        "recorded": "2026-11-25T09:00:00.123456+00:00",
        "activity": {"coding": [{"system": "x", "code": "UPDATE"}]},
        "agent": [{"who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": "http://e"}}}],
        "entity": [{"role": "source", "what": {"reference": "http://e/Observation/9/_history/2"}}],
    }

    rows = {(r.param, r.system, r.value) for r in index_rows("Provenance", provenance)}

    assert ("target", None, "Observation/kobs") in rows
    assert ("agent:identifier", "urn:ietf:rfc:3986", "http://e") in rows
    assert ("entity", None, "http://e/Observation/9") in rows
    assert "recorded" in {param for param, _, _ in rows}
    assert "patient" not in {param for param, _, _ in rows}


def test_index_rows__patient_demographics_by_r4_names() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Müller", "given": ["Ana", "María"]}],
        "gender": "female",
        "birthDate": "1980-02-03",
        "active": True,
        "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@x"}],
        "address": [{"postalCode": "02139", "city": "Cambridge"}],
    }

    rows = {(r.param, r.system, r.value) for r in index_rows("Patient", patient)}

    assert ("family", "Müller", "muller") in rows
    assert ("given", "María", "maria") in rows
    assert ("name", "Ana", "ana") in rows
    assert ("gender", None, "female") in rows
    assert ("active", None, "true") in rows
    assert ("phone", "phone", "555") in rows
    assert ("phone", "email", "a@x") not in rows
    assert ("email", "email", "a@x") in rows
    assert ("telecom", "phone", "555") in rows
    assert ("address-postalcode", "02139", "02139") in rows
    assert ("address", "Cambridge", "cambridge") in rows
    assert "birthdate" in {param for param, _, _ in rows}


def test_normalised__case_and_accents_ignored() -> None:
    assert normalised("ÉLodie Ångström") == "elodie angstrom"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_references_in__mapped_text__the_rows_walking_the_object_gives(name: str) -> None:
    for res in map_submission(load_example(name), MappingContext()):
        kind = str(res["resourceType"])
        from_text = index_values(1, "t", kind, res, references_in(dumps(res).decode()))
        assert from_text == index_values(1, "t", kind, res)


def test_references_in__a_quoted_member_inside_a_string__not_a_reference() -> None:
    note: Resource = {"text": '"reference":"Patient/p9"', "subject": {"reference": "Patient/p1"}}

    assert references_in(dumps(note).decode()) == ["Patient/p1"]
