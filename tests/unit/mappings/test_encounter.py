from __future__ import annotations

import pytest

from mappings.common.people import map_provider
from mappings.context import MappingContext
from mappings.contract import Indication
from mappings.encounter.visit import (
    map_encounter,
    map_indication,
    unmap_encounter_fields,
    unmap_indication,
)
from mappings.jsontypes import Resource
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, assert_model_equivalent, load_example
from tests.unit.mappings.jsonpick import at, list_at, objs_at, str_at

CTX = MappingContext(namespace="https://fhir.test-clinic.example")


def _encounter(name: str) -> Resource:
    sub = load_example(name)
    return map_encounter(
        sub.encounter_id,
        sub.patient.mrn,
        sub.status,
        sub.start,
        sub.end,
        CTX,
        providers=sub.providers or (),
        infusion=sub.infusion,
        has_reason=sub.reason is not None,
    )


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_encounter__examples__models_accept(name: str) -> None:
    assert_model_equivalent(_encounter(name))


def test_map_encounter__typical__ambulatory_cpt_typed_with_participants() -> None:
    res = _encounter("typical-ketamine-infusion")
    assert at(res, "class", "code") == "AMB"
    assert [at(c, "code") for c in list_at(res, "type", 0, "coding")] == [
        "96365",
        "ketamine-infusion-session",
    ]
    roles = [at(p, "type", 0, "coding", 0, "code") for p in list_at(res, "participant")]
    assert roles == ["PPRF", "SPRF"]
    assert res["period"] == {
        "start": "2026-11-20T09:00:00-05:00",
        "end": "2026-11-20T10:35:00-05:00",
    }


def test_map_encounter__esketamine__typed_as_esketamine_session() -> None:
    res = _encounter("esketamine-session")
    assert at(res, "type", 0, "coding", 0, "code") == "esketamine-treatment-session"
    assert at(res, "period", "start") == "2026-11-21T13:00:00Z"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_encounter_fields__examples__status_period_and_provider_order(name: str) -> None:
    sub = load_example(name)
    resources = [_encounter(name)]
    for provider in sub.providers or ():
        resources.extend(map_provider(provider, CTX))
    fields = unmap_encounter_fields(resources, sub.encounter_id, CTX)
    assert fields is not None
    assert fields["status"] == sub.status
    assert fields["provider_ids"] == [p.provider_id for p in sub.providers or ()]


@pytest.mark.parametrize(
    ("reason", "codes"),
    [
        ({"code": "treatment_resistant_depression", "icd10": "F33.2"}, ["F33.2", "370143000"]),
        ({"code": "crps"}, ["128200000", "G90.50"]),
        ({"code": "crps", "icd10": "G90.521"}, ["G90.521", "128200000"]),
        ({"code": "ptsd"}, ["47505003", "F43.10"]),
        ({"code": "generalized_anxiety_disorder"}, ["21897009", "F41.1"]),
        ({"code": "suicidal_ideation"}, ["6471006", "R45.851"]),
        ({"code": "neuropathic_pain"}, ["247398009", "M79.2"]),
        ({"code": "major_depressive_disorder"}, ["370143000"]),
        ({"code": "other", "text": "ketamine-responsive OCD"}, []),
    ],
)
def test_map_indication__each_code__coded_and_round_trips(
    reason: dict[str, str], codes: list[str]
) -> None:
    indication = Indication.model_validate(reason)
    res = map_indication(indication, "ENC-1", "MRN-1", CTX)
    assert_model_equivalent(res)
    got = [
        at(c, "code")
        for c in list_at(res, "code", "coding")
        if not str_at(c, "system").startswith(CTX.namespace)
    ]
    assert got == codes
    assert unmap_indication([res], "ENC-1", CTX) == indication


def test_map_indication__icd10_from_clinic__wins_over_table_code() -> None:
    res = map_indication(Indication(code="crps", icd10="G90.521"), "E", "M", CTX)
    icd = [c for c in objs_at(res, "code", "coding") if str_at(c, "system").endswith("icd-10-cm")]
    assert icd == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G90.521", "userSelected": True}
    ]
