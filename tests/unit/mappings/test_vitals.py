from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.common import identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext, VitalThresholds
from mappings.contract import InfusionProcedure, Measurement, VitalsObservation
from mappings.protocol import default_protocol
from mappings.vitals.interpretation import Limits, interpret, policy_from
from mappings.vitals.measures import SINGLE_MEASURES, vitals_identity
from mappings.vitals.readings import map_vitals, unmap_vitals
from tests.unit.mappings.fhircheck import (
    EXAMPLE_NAMES,
    assert_golden,
    assert_model_equivalent,
    load_example,
)
from tests.unit.mappings.strategies import infusion_procedures, vitals_documents

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
GOLDEN = Path(__file__).parent / "golden" / "vitals"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INFUSION = InfusionProcedure.model_validate(
    {
        "procedure_id": "INF-1",
        "medication": "ketamine",
        "route": "intravenous",
        "status": "completed",
        "start": "2026-11-20T09:10:00-05:00",
        "end": "2026-11-20T09:50:00-05:00",
        "weight": {"value": 70, "unit": "kg"},
        "dose_mg_per_kg": 0.5,
        "total_dose_mg": 35,
    }
)
SCOPE = EncounterScope("ENC-1", "MRN-1", infusion=INFUSION)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Res = dict[str, Any]


def _map(
    records: list[VitalsObservation] | tuple[VitalsObservation, ...],
    scope: EncounterScope = SCOPE,
    ctx: MappingContext = CTX,
) -> list[Res]:
    return cast(list[Res], map_vitals(records, scope, ctx))


def _example(name: str) -> tuple[list[VitalsObservation], EncounterScope]:
    sub = load_example(name)
    scope = EncounterScope(
        sub.encounter_id, sub.patient.mrn, tuple(sub.providers or ()), sub.infusion
    )
    return list(sub.vitals or ()), scope


def _reading(vitals_id: str = "VS-1", phase: str = "pre_infusion", **fields: Any) -> Any:
    doc = {"vitals_id": vitals_id, "taken_at": "2026-11-20T09:00:00-05:00", "phase": phase}
    return VitalsObservation.model_validate({**doc, **fields})


def _bp(systolic: float, diastolic: float) -> dict[str, Any]:
    return {
        "systolic": {"value": systolic, "unit": "mmHg"},
        "diastolic": {"value": diastolic, "unit": "mmHg"},
    }


def _find(resources: list[Res], vitals_id: str, part: str, scope: EncounterScope = SCOPE) -> Res:
    value = vitals_identity(CTX, scope.key(CTX, identity.VITALS, vitals_id), part).value
    return next(r for r in resources if r["identifier"][0]["value"] == value)


def _verdict(concept_holder: Res) -> str | None:
    found = concept_holder.get("interpretation")
    return found[0]["coding"][0]["code"] if found else None


def _component(bp: Res, loinc: str) -> Res:
    return next(c for c in bp["component"] if c["code"]["coding"][0]["code"] == loinc)


def _bp_verdicts(*readings: VitalsObservation, vitals_id: str = "VS-2") -> tuple[Any, ...]:
    """(systolic, diastolic, panel) interpretation codes of one reading's BP."""
    bp = _find(_map(readings), vitals_id, "blood-pressure")
    return (
        _verdict(_component(bp, "8480-6")),
        _verdict(_component(bp, "8462-4")),
        _verdict(bp),
    )


def _single_verdict(field: str, value: float, unit: str) -> str | None:
    measured: dict[str, Any] = {field: {"value": value, "unit": unit}}
    reading = _reading(**measured)
    part = next(m.part for m in SINGLE_MEASURES if m.field == field)
    return _verdict(_find(_map([reading]), "VS-1", part))


# ---- examples: models, goldens, round trip ------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_vitals__examples__every_resource_models_accept(name: str) -> None:
    records, scope = _example(name)
    for res in _map(records, scope, CTX):
        assert_model_equivalent(res)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_vitals__examples__match_golden(name: str) -> None:
    records, scope = _example(name)
    assert_golden(GOLDEN / f"{name}.json", _map(records, scope, CTX))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_vitals__examples__rebuilds_every_reading_in_order(name: str) -> None:
    records, scope = _example(name)
    back = unmap_vitals(_map(records, scope, CTX), scope, CTX)
    assert back == records
    assert [b.model_dump_json() for b in back] == [r.model_dump_json() for r in records]


def _as_ehr_returns(resources: list[Res]) -> list[Res]:
    """Server ids, versions, an extra element, reversed element order, shuffled list."""
    renamed = {r["id"]: f"{9000 + i}" for i, r in enumerate(resources)}
    text = json.dumps(resources)
    for ours, theirs in renamed.items():
        text = text.replace(f"Observation/{ours}", f"Observation/{theirs}")
    out = []
    for res in json.loads(text):
        res["id"] = renamed[res["id"]]
        res["meta"] = {"versionId": "2", "lastUpdated": "2026-11-23T10:00:00Z"}
        res["issued"] = "2026-11-23T10:00:00Z"
        res["identifier"].insert(0, {"system": "urn:ehr:obs", "value": res["id"]})
        out.append(dict(reversed(list(res.items()))))
    random.Random(7).shuffle(out)
    return out


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_vitals__ehr_returned_copies__rebuilt_by_identifier(name: str) -> None:
    records, scope = _example(name)
    returned = _as_ehr_returns(_map(records, scope, CTX))
    assert unmap_vitals(returned, scope, CTX) == records


def test_unmap_vitals__no_vitals_observations__empty_list() -> None:
    assert unmap_vitals([], SCOPE, CTX) == []
    other: Res = {"resourceType": "Observation", "identifier": [{"system": "x", "value": "y"}]}
    assert unmap_vitals([other], SCOPE, CTX) == []


def test_unmap_vitals__observations_of_another_encounter__ignored() -> None:
    ours = _map([_reading("VS-1", heart_rate={"value": 70, "unit": "/min"})])
    other_scope = EncounterScope("ENC-2", "MRN-1")
    theirs = _map([_reading("VS-9", heart_rate={"value": 90, "unit": "/min"})], other_scope, CTX)
    encounters: list[Res] = [
        {
            "resourceType": "Encounter",
            "id": identity.encounter(CTX, eid).id,
            "identifier": [identity.encounter(CTX, eid).identifier()],
        }
        for eid in ("ENC-1", "ENC-2")
    ]
    back = unmap_vitals([*encounters, *theirs, *ours], SCOPE, CTX)
    assert [r.vitals_id for r in back] == ["VS-1"]


def test_unmap_vitals__list_sent_out_of_time_order__order_kept() -> None:
    later = _reading("A", taken_at="2026-11-20T10:00:00Z", heart_rate={"value": 70, "unit": "/min"})
    earlier = _reading("B", taken_at="2026-11-20T09:00:00Z", spo2={"value": 97, "unit": "%"})
    resources = list(reversed(_map([later, earlier])))
    assert [r.vitals_id for r in unmap_vitals(resources, SCOPE, CTX)] == ["A", "B"]


@FAST
@given(
    records=st.lists(vitals_documents(), max_size=5, unique_by=lambda d: d["vitals_id"]).map(
        lambda docs: [VitalsObservation.model_validate(d) for d in docs]
    ),
    infusion=st.none() | infusion_procedures(),
)
def test_map_vitals__generated_records__models_accept_and_round_trip(
    records: list[VitalsObservation], infusion: InfusionProcedure | None
) -> None:
    scope = EncounterScope("ENC-1", "MRN-1", infusion=infusion)
    resources = _map(records, scope, CTX)
    for res in resources:
        assert_model_equivalent(res)
    back = unmap_vitals(resources, scope, CTX)
    assert [b.model_dump_json() for b in back] == [r.model_dump_json() for r in records]


# ---- codes, units, identity ---------------------------------------------------------------


def test_map_vitals__identifier__vitals_system_with_encounter_id_and_measure() -> None:
    res = _map([_reading("VS-1", heart_rate={"value": 70, "unit": "/min"})])
    system = "https://fhir.test-clinic.example/sid/vitals"
    assert [r["identifier"] for r in res] == [
        [{"system": system, "value": "ENC-1~VS-1~panel"}],
        [{"system": system, "value": "ENC-1~VS-1~heart-rate"}],
    ]
    expected = identity.identity(CTX, "Observation", "vitals", "ENC-1", "VS-1", "heart-rate")
    assert res[1]["id"] == expected.id


def test_map_vitals__same_vitals_id_in_two_encounters__two_readings() -> None:
    reading = _reading("VS-1", heart_rate={"value": 70, "unit": "/min"})
    first = _map([reading], EncounterScope("ENC-1", "MRN-1"), CTX)
    second = _map([reading], EncounterScope("ENC-2", "MRN-1"), CTX)
    assert not {r["id"] for r in first} & {r["id"] for r in second}


def test_map_vitals__reading_stored_before_scoped_ids__keeps_its_old_identifier() -> None:
    legacy = replace(CTX, legacy_records=frozenset({("vitals_id", "ENC-1", "VS-1")}))
    reading = _reading("VS-1", heart_rate={"value": 70, "unit": "/min"})
    res = _map([reading], SCOPE, legacy)
    assert [r["identifier"][0]["value"] for r in res] == ["VS-1~panel", "VS-1~heart-rate"]
    assert unmap_vitals(res, SCOPE, legacy) == [reading]
    elsewhere = _map([reading], EncounterScope("ENC-2", "MRN-1"), legacy)
    assert elsewhere[0]["identifier"][0]["value"] == "ENC-2~VS-1~panel"


@pytest.mark.parametrize(
    ("field", "value", "unit", "part", "loinc", "ucum"),
    [
        ("heart_rate", 74, "/min", "heart-rate", ["8867-4"], "/min"),
        ("respiratory_rate", 14, "/min", "respiratory-rate", ["9279-1"], "/min"),
        ("spo2", 98, "%", "oxygen-saturation", ["2708-6", "59408-5"], "%"),
        ("temperature", 36.8, "Cel", "body-temperature", ["8310-5"], "Cel"),
        ("temperature", 98.4, "degF", "body-temperature", ["8310-5"], "[degF]"),
        ("weight", 68.5, "kg", "body-weight", ["29463-7"], "kg"),
        ("weight", 150, "lb", "body-weight", ["29463-7"], "[lb_av]"),
        ("height", 172, "cm", "body-height", ["8302-2"], "cm"),
        ("height", 65.5, "in", "body-height", ["8302-2"], "[in_i]"),
    ],
)
def test_map_vitals__each_measure_and_unit__loinc_coded_with_original_ucum_unit(
    field: str, value: float, unit: str, part: str, loinc: list[str], ucum: str
) -> None:
    measured: dict[str, Any] = {field: {"value": value, "unit": unit}}
    res = _find(_map([_reading(**measured)]), "VS-1", part)
    assert [(c["system"], c["code"]) for c in res["code"]["coding"]] == [(LOINC, c) for c in loinc]
    assert res["valueQuantity"] == {"value": value, "unit": unit, "system": UCUM, "code": ucum}


def test_map_vitals__spo2__carries_both_loinc_codes_in_one_concept() -> None:
    res = _find(
        _map([_reading(spo2={"value": 97, "unit": "%"})]),
        "VS-1",
        "oxygen-saturation",
    )
    assert {c["code"] for c in res["code"]["coding"]} == {"2708-6", "59408-5"}


def test_map_vitals__blood_pressure__one_observation_two_components_no_value() -> None:
    resources = _map([_reading(**_bp(128, 82))])
    assert len(resources) == 2
    bp = _find(resources, "VS-1", "blood-pressure")
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    assert "valueQuantity" not in bp
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [128, 82]
    assert {c["valueQuantity"]["code"] for c in bp["component"]} == {"mm[Hg]"}


def test_map_vitals__every_observation__final_vital_signs_for_patient_encounter_time() -> None:
    reading = _reading(**_bp(120, 80), heart_rate={"value": 70, "unit": "/min"})
    for res in _map([reading]):
        assert res["status"] == "final"
        assert res["category"][0]["coding"][0]["code"] == "vital-signs"
        assert res["subject"] == identity.patient(CTX, "MRN-1").ref()
        assert res["encounter"] == identity.encounter(CTX, "ENC-1").ref()
        assert res["effectiveDateTime"] == "2026-11-20T09:00:00-05:00"


def test_map_vitals__panel__coded_85353_1_with_a_member_per_measurement() -> None:
    reading = _reading(**_bp(120, 80), spo2={"value": 97, "unit": "%"})
    panel, *members = _map([reading])
    assert panel["code"]["coding"][0]["code"] == "85353-1"
    assert "valueQuantity" not in panel
    assert panel["hasMember"] == [{"reference": f"Observation/{m['id']}"} for m in members]


# ---- phase, partOf, position --------------------------------------------------------------

PHASE_URL = "https://fhir.test-clinic.example/StructureDefinition/infusion-phase"
POSITION_URL = "http://hl7.org/fhir/StructureDefinition/observation-bodyPosition"


def _extension(res: Res, url: str) -> Any:
    return next((e for e in res.get("extension", []) if e["url"] == url), None)


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        ("baseline", "infusion-phase-baseline"),
        ("pre_infusion", "infusion-phase-pre"),
        ("intra_infusion", "infusion-phase-intra"),
        ("post_infusion", "infusion-phase-post"),
        ("discharge", "infusion-phase-discharge"),
    ],
)
def test_map_vitals__each_phase__clinic_coded_on_every_observation(phase: str, code: str) -> None:
    reading = _reading(phase=phase, heart_rate={"value": 70, "unit": "/min"})
    resources = _map([reading])
    for res in resources:
        phase_coding = _extension(res, PHASE_URL)["valueCoding"]
        assert (phase_coding["system"], phase_coding["code"]) == (CTX.code_system, code)
    assert unmap_vitals(resources, SCOPE, CTX) == [reading]


def test_map_vitals__intra_infusion_reading__part_of_the_ketamine_administration() -> None:
    reading = _reading(phase="intra_infusion", heart_rate={"value": 70, "unit": "/min"})
    administration = identity.infusion_administration(CTX, "ENC-1~INF-1")
    for res in _map([reading]):
        assert res["partOf"] == [{"reference": f"MedicationAdministration/{administration.id}"}]


def test_map_vitals__intra_infusion_without_infusion_in_scope__no_part_of() -> None:
    reading = _reading(phase="intra_infusion", heart_rate={"value": 70, "unit": "/min"})
    resources = _map([reading], EncounterScope("ENC-1", "MRN-1"), CTX)
    assert all("partOf" not in r for r in resources)


@pytest.mark.parametrize("phase", ["baseline", "pre_infusion", "post_infusion", "discharge"])
def test_map_vitals__reading_outside_the_infusion__no_part_of(phase: str) -> None:
    reading = _reading(phase=phase, heart_rate={"value": 70, "unit": "/min"})
    assert all("partOf" not in r for r in _map([reading]))


@pytest.mark.parametrize(
    ("position", "snomed"),
    [("sitting", "33586001"), ("supine", "40199007"), ("standing", "10904000")],
)
def test_map_vitals__each_position__body_position_on_panel_and_blood_pressure(
    position: str, snomed: str
) -> None:
    reading = _reading(position=position, **_bp(120, 80), heart_rate={"value": 70, "unit": "/min"})
    resources = _map([reading])
    for part in ("panel", "blood-pressure"):
        concept = _extension(_find(resources, "VS-1", part), POSITION_URL)["valueCodeableConcept"]
        assert concept["coding"][0]["code"] == snomed
    assert _extension(_find(resources, "VS-1", "heart-rate"), POSITION_URL) is None
    assert unmap_vitals(resources, SCOPE, CTX) == [reading]


def test_map_vitals__position_without_blood_pressure__kept_on_panel_and_round_trips() -> None:
    reading = _reading(position="supine", spo2={"value": 96, "unit": "%"})
    resources = _map([reading])
    assert _extension(resources[0], POSITION_URL) is not None
    assert unmap_vitals(resources, SCOPE, CTX) == [reading]


def test_map_vitals__unit_outside_the_table__kept_as_text_not_guessed() -> None:
    reading = _reading(heart_rate={"value": 70, "unit": "/min"})
    probe = reading.model_copy(update={"heart_rate": Measurement(value=70, unit="bpm")})
    res = _find(_map([probe]), "VS-1", "heart-rate")
    assert res["valueQuantity"] == {"value": 70, "unit": "bpm"}


# ---- interpretation rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (140, 90, ("N", "N", "N")),
        (141, 85, ("H", "N", "H")),
        (135, 91, ("N", "H", "H")),
        (179, 109, ("H", "H", "H")),
    ],
)
def test_map_vitals__bp_above_140_over_90__is_high(
    systolic: float, diastolic: float, expected: tuple[str, ...]
) -> None:
    assert _bp_verdicts(_reading("VS-2", **_bp(systolic, diastolic))) == expected


def test_map_vitals__systolic_180__is_critical_high() -> None:
    assert _bp_verdicts(_reading("VS-2", **_bp(180, 100))) == ("HH", "H", "HH")


def test_map_vitals__diastolic_110__is_critical_high() -> None:
    assert _bp_verdicts(_reading("VS-2", **_bp(150, 110))) == ("H", "HH", "HH")


def test_map_vitals__systolic_rise_40_from_baseline__is_critical_high() -> None:
    baseline = _reading("VS-1", phase="baseline", **_bp(100, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(140, 70))
    assert _bp_verdicts(baseline, intra) == ("HH", "N", "HH")


def test_map_vitals__systolic_rise_39_from_baseline__is_not_critical() -> None:
    baseline = _reading("VS-1", phase="baseline", **_bp(100, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(139, 70))
    assert _bp_verdicts(baseline, intra) == ("N", "N", "N")


def test_map_vitals__diastolic_rise_25_from_baseline__is_critical_high() -> None:
    baseline = _reading("VS-1", phase="baseline", **_bp(110, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(120, 85))
    assert _bp_verdicts(baseline, intra) == ("N", "HH", "HH")


@pytest.mark.parametrize("phase", ["intra_infusion", "post_infusion", "discharge"])
def test_map_vitals__rise_from_baseline_after_dosing__is_critical_high(phase: str) -> None:
    baseline = _reading("VS-1", phase="baseline", **_bp(100, 60))
    after = _reading("VS-2", phase=phase, **_bp(140, 60))
    assert _bp_verdicts(baseline, after)[0] == "HH"


def test_map_vitals__rise_in_pre_infusion_phase__judged_on_absolute_limits_only() -> None:
    baseline = _reading("VS-1", phase="baseline", **_bp(100, 60))
    pre = _reading("VS-2", phase="pre_infusion", **_bp(140, 85))
    assert _bp_verdicts(baseline, pre) == ("N", "N", "N")


def test_map_vitals__no_baseline_phase__rise_measured_from_pre_infusion_reading() -> None:
    pre = _reading("VS-1", phase="pre_infusion", **_bp(100, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(140, 60))
    assert _bp_verdicts(pre, intra)[0] == "HH"


def test_map_vitals__baseline_phase_reading__preferred_over_pre_infusion() -> None:
    baseline = _reading("VS-0", phase="baseline", **_bp(120, 60))
    pre = _reading("VS-1", phase="pre_infusion", **_bp(100, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(140, 60))
    assert _bp_verdicts(baseline, pre, intra)[0] == "N"


def test_map_vitals__several_baseline_readings__earliest_is_the_baseline() -> None:
    first = _reading("VS-0", phase="baseline", taken_at="2026-11-20T08:00:00Z", **_bp(100, 60))
    second = _reading("VS-1", phase="baseline", taken_at="2026-11-20T08:30:00Z", **_bp(130, 60))
    intra = _reading("VS-2", phase="intra_infusion", **_bp(140, 60))
    assert _bp_verdicts(second, first, intra)[0] == "HH"


def test_map_vitals__stopped_example_surge__is_critical_high() -> None:
    records, scope = _example("stopped-infusion")
    bp = _find(_map(records, scope, CTX), "VS-11", "blood-pressure", scope)
    assert _verdict(bp) == "HH"


@pytest.mark.parametrize(("value", "expected"), [(111, "H"), (110, "N"), (50, "N"), (49, "L")])
def test_map_vitals__heart_rate_above_110_or_below_50__is_high_or_low(
    value: float, expected: str
) -> None:
    assert _single_verdict("heart_rate", value, "/min") == expected


@pytest.mark.parametrize(("value", "expected"), [(25, "H"), (24, "N"), (10, "N"), (9, "L")])
def test_map_vitals__respiratory_rate_above_24_or_below_10__is_high_or_low(
    value: float, expected: str
) -> None:
    assert _single_verdict("respiratory_rate", value, "/min") == expected


@pytest.mark.parametrize(("value", "expected"), [(92, "N"), (91.9, "L"), (90, "L"), (89.9, "LL")])
def test_map_vitals__spo2_below_92_low_below_90__is_critical_low(
    value: float, expected: str
) -> None:
    assert _single_verdict("spo2", value, "%") == expected


@pytest.mark.parametrize(
    ("field", "value", "unit"),
    [("temperature", 104, "degF"), ("weight", 300, "kg"), ("height", 30, "cm")],
)
def test_map_vitals__temperature_weight_height__no_rule_so_no_interpretation(
    field: str, value: float, unit: str
) -> None:
    assert _single_verdict(field, value, unit) is None


def test_map_vitals__thresholds_from_context__decide_the_verdict() -> None:
    protocol = default_protocol()
    vitals = {g: t.model_copy(update={"heart_rate_high": 90}) for g, t in protocol.vitals.items()}
    strict_protocol = protocol.model_copy(update={"vitals": vitals})
    strict = MappingContext(namespace=CTX.namespace, protocol=strict_protocol)
    res = _map([_reading(heart_rate={"value": 95, "unit": "/min"})], SCOPE, strict)
    assert _verdict(res[1]) == "H"
    assert _single_verdict("heart_rate", 95, "/min") == "N"


def test_interpret__fahrenheit__converted_to_celsius_only_to_judge() -> None:
    policy = {**policy_from(VitalThresholds()), "temperature": Limits(high=38.0)}
    measure = next(m for m in SINGLE_MEASURES if m.field == "temperature")
    fever = _reading(temperature={"value": 100.5, "unit": "degF"})  # 38.06 Cel
    normal = _reading(temperature={"value": 100.3, "unit": "degF"})  # 37.94 Cel
    assert interpret(measure, fever, None, policy) == "high"
    assert interpret(measure, normal, None, policy) == "normal"


# ---- R4 vital-signs profiles and performer ------------------------------------------------

R4_PROFILES = {
    "85353-1": "vitalspanel",
    "85354-9": "bp",
    "8867-4": "heartrate",
    "9279-1": "resprate",
    "2708-6": "oxygensat",
    "8310-5": "bodytemp",
    "29463-7": "bodyweight",
    "8302-2": "bodyheight",
}
VITAL_UNITS = {"mm[Hg]", "/min", "%", "Cel", "[degF]", "kg", "[lb_av]", "cm", "[in_i]"}


def _quantities(res: Res) -> list[Res]:
    found = [res["valueQuantity"]] if "valueQuantity" in res else []
    return found + [c["valueQuantity"] for c in res.get("component", [])]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_vitals__every_observation__declares_and_meets_its_r4_profile(name: str) -> None:
    records, scope = _example(name)
    for res in _map(records, scope):
        if res["resourceType"] != "Observation":
            continue
        code = res["code"]["coding"][0]["code"]
        profile = f"http://hl7.org/fhir/StructureDefinition/{R4_PROFILES[code]}"
        assert res["meta"]["profile"] == [profile]
        assert res["category"][0]["coding"][0]["code"] == "vital-signs"
        assert res["subject"]["reference"].startswith("Patient/")
        assert "effectiveDateTime" in res
        assert all(
            (q["system"], q["code"] in VITAL_UNITS) == (UCUM, True) for q in _quantities(res)
        )


def test_map_vitals__infusion_names_a_monitor__every_observation_performed_by_them() -> None:
    monitored = INFUSION.model_copy(update={"monitored_by": "PRV-9"})
    scope = EncounterScope("ENC-1", "MRN-1", infusion=monitored)
    resources = _map([_reading(heart_rate={"value": 70, "unit": "/min"})], scope)
    expected = [identity.practitioner(CTX, "PRV-9").ref()]
    assert [r["performer"] for r in resources] == [expected, expected]


def test_map_vitals__no_monitor_known__performed_by_the_clinic() -> None:
    scope = EncounterScope("ENC-1", "MRN-1")
    (panel, reading) = _map([_reading(heart_rate={"value": 70, "unit": "/min"})], scope)
    clinic = identity.organization(CTX).ref(CTX.clinic_name)
    assert panel["performer"] == reading["performer"] == [clinic]
