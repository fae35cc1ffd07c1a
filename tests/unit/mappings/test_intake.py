from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mappings import terminology
from mappings.common import identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import IntakeScreening
from mappings.encounter.submission import scope_of
from mappings.intake.screening import map_intake, unmap_intake
from mappings.protocol import load_protocol
from tests.unit.mappings.fhircheck import (
    EXAMPLE_NAMES,
    assert_golden,
    assert_model_equivalent,
    load_example,
)
from tests.unit.mappings.strategies import (
    CONTRAINDICATION_KEYS,
    CSSRS_KEYS,
    intake_screenings,
)

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
GOLDEN = Path(__file__).parent / "golden" / "intake"
WITH_INTAKE = [n for n in EXAMPLE_NAMES if load_example(n).intake_screening is not None]
INFUSION = load_example("typical-ketamine-infusion").infusion
PLANNED = EncounterScope("ENC-1", "MRN-1", infusion=INFUSION)
UNPLANNED = EncounterScope("ENC-1", "MRN-1")
TABLES = (
    "screening_instruments",
    "screening_items",
    "screening_answers",
    "screening_severity",
    "intake_checklist",
    "contraindications",
    "intake_findings",
)

Res = dict[str, Any]


def _record(**changes: Any) -> IntakeScreening:
    """A screening with nothing positive, fasted 8 h, escort confirmed; plus `changes`."""
    doc: dict[str, Any] = {
        "screening_id": "SCR-1",
        "completed_at": "2026-11-20T08:00:00-05:00",
        "contraindications": dict.fromkeys(CONTRAINDICATION_KEYS, False),
        "last_oral_intake_at": "2026-11-20T00:00:00-05:00",
        "escort": {"confirmed": True},
    }
    contraindications = changes.pop("contraindications", {})
    doc["contraindications"].update(contraindications)
    doc.update(changes)
    return IntakeScreening.model_validate({k: v for k, v in doc.items() if v is not None})


def _of(resources: list[Res], resource_type: str) -> list[Res]:
    return [r for r in resources if r["resourceType"] == resource_type]


def _one(resources: list[Res], resource_type: str, part: str) -> Res:
    value = f"ENC-1~SCR-1~{part}"
    found = [r for r in _of(resources, resource_type) if _identifier(r)["value"] == value]
    assert len(found) == 1, f"{resource_type} {part}: {len(found)} found"
    return found[0]


def _identifier(res: Res) -> Res:
    ident = res["identifier"]
    return ident if isinstance(ident, dict) else ident[0]


def _codes(concept: Res) -> list[str]:
    return [c["code"] for c in concept.get("coding", [])]


def _parts(resources: list[Res], resource_type: str) -> list[str]:
    return [_identifier(r)["value"].split("~")[-1] for r in _of(resources, resource_type)]


def _answers(res: Res) -> dict[str, Res]:
    out: dict[str, Res] = {}
    for item in res.get("item", []):
        if "answer" in item:
            out[item["linkId"]] = item["answer"][0]
        out.update(_answers(item))
    return out


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("name", WITH_INTAKE)
def test_map_intake__examples__match_golden_and_models_accept(name: str) -> None:
    sub = load_example(name)
    assert sub.intake_screening is not None
    resources = map_intake(sub.intake_screening, scope_of(sub), CTX)
    for res in resources:
        assert_model_equivalent(res)
    assert_golden(GOLDEN / f"{name}.json", resources)


@pytest.mark.parametrize("name", WITH_INTAKE)
def test_unmap_intake__examples__round_trip(name: str) -> None:
    sub = load_example(name)
    assert sub.intake_screening is not None
    resources = map_intake(sub.intake_screening, scope_of(sub), CTX)
    assert unmap_intake(resources, scope_of(sub), CTX) == sub.intake_screening


def test_unmap_intake__no_screening__none() -> None:
    assert unmap_intake([], UNPLANNED, CTX) is None


def test_map_intake__typical__totals_risk_fasting_and_suicide_flag() -> None:
    sub = load_example("typical-ketamine-infusion")
    assert sub.intake_screening is not None
    resources = map_intake(sub.intake_screening, scope_of(sub), CTX)
    values = {_identifier(o)["value"].split("~")[-1]: o for o in _of(resources, "Observation")}
    assert values["phq9-total"]["valueInteger"] == 16
    assert values["gad7-total"]["valueInteger"] == 10
    assert _codes(values["cssrs-risk"]["valueCodeableConcept"])[0] == "LA9194-7"
    assert values["fasting-duration"]["valueQuantity"]["value"] == 7.17
    # C-SSRS: wish to be dead only (low); PHQ-9 item 9 answered 1: two Flags, two codes.
    assert _parts(resources, "Flag") == ["suicide-risk-low", "phq9-item9-positive"]
    assert _of(resources, "DetectedIssue") == []


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("part", "canonical"),
    [
        ("phq9", "http://loinc.org/q/44249-1"),
        ("gad7", "http://loinc.org/q/69737-5"),
        ("pcl5", "http://loinc.org/q/101697-1"),
        ("cssrs", "https://fhir.test-clinic.example/Questionnaire/cssrs-screener"),
        ("checklist", "https://fhir.test-clinic.example/Questionnaire/ketamine-intake-checklist"),
    ],
)
def test_map_intake__each_instrument__one_completed_response_with_its_questionnaire(
    part: str, canonical: str
) -> None:
    record = _record(
        phq9=[0] * 9, gad7=[0] * 7, pcl5=[0] * 20, cssrs=dict.fromkeys(CSSRS_KEYS, False)
    )
    res = _one(map_intake(record, UNPLANNED, CTX), "QuestionnaireResponse", part)
    assert res["questionnaire"] == canonical
    assert res["status"] == "completed"
    assert res["authored"] == "2026-11-20T08:00:00-05:00"
    assert res["identifier"] == {
        "system": "https://fhir.test-clinic.example/sid/intake",
        "value": f"ENC-1~SCR-1~{part}",
    }


def test_map_intake__phq9_items__linkid_is_loinc_and_answer_carries_ordinal() -> None:
    record = _record(phq9=[0, 1, 2, 3, 0, 1, 2, 3, 0])
    res = _one(map_intake(record, UNPLANNED, CTX), "QuestionnaireResponse", "phq9")
    answers = _answers(res)
    first = answers["/44250-9"]["valueCoding"]
    assert first["code"] == "LA6568-5"
    assert first["extension"][0]["valueDecimal"] == 0
    assert answers["/44255-8"]["valueCoding"]["code"] == "LA6569-3"
    assert answers["/44259-0"]["valueCoding"]["code"] == "LA6570-1"
    assert answers["/44254-1"]["valueCoding"]["code"] == "LA6571-9"
    assert answers["/44261-6"] == {"valueInteger": 12}


def test_map_intake__pcl5__integer_answers_and_total() -> None:
    items = [i % 5 for i in range(20)]
    resources = map_intake(_record(pcl5=items), UNPLANNED, CTX)
    answers = _answers(_one(resources, "QuestionnaireResponse", "pcl5"))
    assert answers["/101699-7"] == {"valueInteger": 0}
    assert answers["/pcl5-item-20"] == {"valueInteger": 4}
    total = _one(resources, "Observation", "pcl5-total")
    assert total["valueInteger"] == sum(items) == 40
    assert "interpretation" not in total
    assert "component" not in total


def test_map_intake__checklist__false_answers_kept_and_optional_ones_absent() -> None:
    record = _record(last_oral_intake_at=None, escort=None)
    res = _one(map_intake(record, UNPLANNED, CTX), "QuestionnaireResponse", "checklist")
    answers = _answers(res)
    assert answers["/checklist-pregnant"] == {"valueBoolean": False}
    assert len(answers) == len(CONTRAINDICATION_KEYS)


def test_map_intake__escort_and_notes__kept_in_checklist() -> None:
    record = _record(escort={"name": "Ann", "phone": "555", "confirmed": False}, notes="calm")
    answers = _answers(
        _one(map_intake(record, UNPLANNED, CTX), "QuestionnaireResponse", "checklist")
    )
    assert answers["/checklist-escort-confirmed"] == {"valueBoolean": False}
    assert answers["/checklist-escort-name"] == {"valueString": "Ann"}
    assert answers["/checklist-escort-phone"] == {"valueString": "555"}
    assert answers["/checklist-notes"] == {"valueString": "calm"}


# ---------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately-severe"),
        (19, "moderately-severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_map_intake__phq9_total__severity_band_as_component(total: int, band: str) -> None:
    items = [min(3, max(0, total - 3 * i)) for i in range(9)]
    res = _one(map_intake(_record(phq9=items), UNPLANNED, CTX), "Observation", "phq9-total")
    assert res["valueInteger"] == total
    assert _severity_band(res) == [f"phq9-severity-{band}"]
    assert "interpretation" not in res  # R4 binds it to v3 codes, which have no such bands
    assert res["category"][0]["coding"][0]["code"] == "survey"
    assert res["derivedFrom"] == [
        identity.identity(CTX, "QuestionnaireResponse", "intake", "ENC-1~SCR-1", "phq9").ref()
    ]


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_map_intake__gad7_total__severity_band(total: int, band: str) -> None:
    items = [min(3, max(0, total - 3 * i)) for i in range(7)]
    res = _one(map_intake(_record(gad7=items), UNPLANNED, CTX), "Observation", "gad7-total")
    assert (res["valueInteger"], _severity_band(res)) == (total, [f"gad7-severity-{band}"])


def _severity_band(total: Res) -> list[str]:
    (component,) = total["component"]
    assert _codes(component["code"]) == ["severity-band"]
    return _codes(component["valueCodeableConcept"])


@pytest.mark.parametrize(
    ("answered_yes", "risk"),
    [
        (None, ["cssrs-risk-none"]),
        ("wish_to_be_dead", ["LA9194-7", "cssrs-risk-low"]),
        ("non_specific_active_thoughts", ["LA9194-7", "cssrs-risk-low"]),
        ("active_ideation_with_method", ["cssrs-risk-moderate"]),
        ("active_ideation_with_intent", ["cssrs-risk-high"]),
        ("active_ideation_with_plan", ["cssrs-risk-high"]),
        ("suicidal_behavior_past_3_months", ["cssrs-risk-high"]),
    ],
)
def test_map_intake__cssrs__risk_level_and_flag(answered_yes: str | None, risk: list[str]) -> None:
    cssrs = {k: k == answered_yes for k in CSSRS_KEYS}
    resources = map_intake(_record(cssrs=cssrs), UNPLANNED, CTX)
    observation = _one(resources, "Observation", "cssrs-risk")
    assert _codes(observation["code"]) == ["93374-7"]
    assert _codes(observation["valueCodeableConcept"]) == risk
    level = risk[-1].removeprefix("cssrs-risk-")
    flags = [p for p in _parts(resources, "Flag") if p.startswith("suicide-risk")]
    assert flags == ([] if level == "none" else [f"suicide-risk-{level}"])
    for flag in _of(resources, "Flag"):
        assert _codes(flag["code"]) == [f"flag-suicide-risk-{level}"]


def test_map_intake__cssrs_method_and_intent__high_wins_over_moderate() -> None:
    cssrs = {
        k: k in ("active_ideation_with_method", "active_ideation_with_intent") for k in CSSRS_KEYS
    }
    assert _parts(map_intake(_record(cssrs=cssrs), UNPLANNED, CTX), "Flag") == ["suicide-risk-high"]


@pytest.mark.parametrize(("item9", "flagged"), [(0, False), (1, True), (3, True)])
def test_map_intake__phq9_item9__above_zero_raises_its_own_flag(item9: int, flagged: bool) -> None:
    resources = map_intake(_record(phq9=[0] * 8 + [item9]), UNPLANNED, CTX)
    assert ("phq9-item9-positive" in _parts(resources, "Flag")) == flagged
    if flagged:
        flag = _one(resources, "Flag", "phq9-item9-positive")
        assert _codes(flag["code"]) == ["flag-phq9-item9-positive"]
        assert flag["status"] == "active"
        assert _codes(flag["category"][0]) == ["safety"]
        assert flag["encounter"] == identity.encounter(CTX, "ENC-1").ref()
        assert flag["period"] == {"start": "2026-11-20T08:00:00-05:00"}


def test_map_intake__pain__integer_observation_reported_by_patient() -> None:
    res = _one(map_intake(_record(pain_score=7), UNPLANNED, CTX), "Observation", "pain")
    assert _codes(res["code"]) == ["72514-3"]
    assert res["valueInteger"] == 7
    assert res["performer"] == [identity.patient(CTX, "MRN-1").ref()]


@pytest.mark.parametrize(("pregnant", "code"), [(True, "77386006"), (False, "60001007")])
def test_map_intake__pregnancy_status__social_history_observation(
    pregnant: bool, code: str
) -> None:
    record = _record(contraindications={"pregnant": pregnant})
    res = _one(map_intake(record, UNPLANNED, CTX), "Observation", "pregnancy-status")
    assert _codes(res["code"]) == ["82810-3"]
    assert _codes(res["valueCodeableConcept"]) == [code]
    assert _codes(res["category"][0]) == ["social-history"]


def test_map_intake__fasting__hours_from_last_intake_to_completion() -> None:
    record = _record(last_oral_intake_at="2026-11-20T04:15:00-05:00")
    res = _one(map_intake(record, UNPLANNED, CTX), "Observation", "fasting-duration")
    assert _codes(res["code"]) == ["87527-8"]
    assert res["valueQuantity"] == {
        "value": 3.75,
        "unit": "h",
        "system": "http://unitsofmeasure.org",
        "code": "h",
    }


# ---------------------------------------------------------------- findings and alerts

CONDITION_CODES = {
    "uncontrolled_hypertension": ["38341003", "I10", "condition-uncontrolled-hypertension"],
    "unstable_cardiovascular_disease": ["49601007", "condition-unstable-cardiovascular-disease"],
    "uncontrolled_thyroid_disease": ["14304000", "condition-uncontrolled-thyroid-disease"],
    "elevated_intracranial_pressure": ["condition-elevated-intracranial-pressure"],
    "history_of_psychosis": ["69322001", "F29", "condition-history-of-psychosis"],
    "bipolar_manic_phase": ["191618007", "condition-bipolar-manic-phase"],
    "uncontrolled_glaucoma": ["23986001", "H40.9", "condition-uncontrolled-glaucoma"],
    "pregnant": ["77386006", "Z33.1", "condition-pregnant"],
}
ISSUE_CODES = {key: "COND" for key in CONDITION_CODES} | {
    "pregnant": "PREG",
    "prior_ketamine_adverse_reaction": "ALGY",
}


@pytest.mark.parametrize("key", list(CONDITION_CODES))
def test_map_intake__positive_contraindication__problem_list_condition(key: str) -> None:
    resources = map_intake(_record(contraindications={key: True}), UNPLANNED, CTX)
    condition = _one(resources, "Condition", key)
    assert _codes(condition["code"]) == CONDITION_CODES[key]
    assert _codes(condition["category"][0]) == ["problem-list-item"]
    status = "inactive" if key == "history_of_psychosis" else "active"
    assert _codes(condition["clinicalStatus"]) == [status]
    assert condition["subject"] == identity.patient(CTX, "MRN-1").ref()
    assert condition["recordedDate"] == "2026-11-20T08:00:00-05:00"
    assert _of(resources, "AllergyIntolerance") == []


def test_map_intake__prior_ketamine_reaction__allergy_intolerance_to_ketamine() -> None:
    record = _record(contraindications={"prior_ketamine_adverse_reaction": True})
    resources = map_intake(record, UNPLANNED, CTX)
    allergy = _one(resources, "AllergyIntolerance", "prior_ketamine_adverse_reaction")
    assert allergy["code"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert _codes(allergy["code"]) == ["6130"]
    assert allergy["category"] == ["medication"]
    assert allergy["patient"] == identity.patient(CTX, "MRN-1").ref()
    assert _of(resources, "Condition") == []


def test_map_intake__nothing_positive__no_conditions_issues_or_flags() -> None:
    resources = map_intake(_record(bipolar_disorder=False), PLANNED, CTX)
    for resource_type in ("Condition", "AllergyIntolerance", "DetectedIssue", "Flag"):
        assert _of(resources, resource_type) == []


@pytest.mark.parametrize("key", list(ISSUE_CODES))
def test_map_intake__contraindication_with_planned_infusion__detected_issue(key: str) -> None:
    resources = map_intake(_record(contraindications={key: True}), PLANNED, CTX)
    issue = _one(resources, "DetectedIssue", f"issue-{key}")
    assert _codes(issue["code"]) == [ISSUE_CODES[key]]
    assert issue["status"] == "final"
    assert issue["severity"] == "high"
    assert issue["patient"] == identity.patient(CTX, "MRN-1").ref()
    assert INFUSION is not None
    request = identity.infusion_request(CTX, f"ENC-1~{INFUSION.procedure_id}").ref()
    assert request in issue["implicated"]
    finding_type = "AllergyIntolerance" if key == "prior_ketamine_adverse_reaction" else "Condition"
    assert _one(resources, finding_type, key)["id"] in issue["implicated"][0]["reference"]


@pytest.mark.parametrize("key", list(ISSUE_CODES))
def test_map_intake__contraindication_without_infusion__no_detected_issue(key: str) -> None:
    resources = map_intake(_record(contraindications={key: True}), UNPLANNED, CTX)
    assert _of(resources, "DetectedIssue") == []


@pytest.mark.parametrize(
    ("fasted_minutes", "required_hours", "issue"),
    [(360, 6, False), (359, 6, True), (479, 8, True), (480, 8, False), (-30, 6, True)],
)
def test_map_intake__fasting_under_policy__detected_issue(
    fasted_minutes: int, required_hours: float, issue: bool
) -> None:
    record = _record()
    last = record.completed_at - timedelta(minutes=fasted_minutes)
    record = record.model_copy(update={"last_oral_intake_at": last})
    override = f'[fasting]\nnpo_hours = {required_hours}\nsource = "clinic: test"\n'
    ctx = MappingContext(namespace=CTX.namespace, protocol=load_protocol(override))
    resources = map_intake(record, UNPLANNED, ctx)
    assert ("issue-fasting" in _parts(resources, "DetectedIssue")) == issue
    assert ("fasting-duration" in _parts(resources, "Observation")) == (fasted_minutes >= 0)


def test_map_intake__fasting_unknown__no_issue_and_no_observation() -> None:
    resources = map_intake(_record(last_oral_intake_at=None), UNPLANNED, CTX)
    assert "issue-fasting" not in _parts(resources, "DetectedIssue")
    assert "fasting-duration" not in _parts(resources, "Observation")


@pytest.mark.parametrize(
    ("escort", "issue"),
    [(None, True), ({"confirmed": False, "name": "Ann"}, True), ({"confirmed": True}, False)],
)
def test_map_intake__escort_missing_or_unconfirmed__detected_issue(
    escort: dict[str, Any] | None, issue: bool
) -> None:
    resources = map_intake(_record(escort=escort), PLANNED, CTX)
    assert ("issue-escort" in _parts(resources, "DetectedIssue")) == issue
    if issue:
        found = _one(resources, "DetectedIssue", "issue-escort")
        assert _codes(found["code"]) == ["issue-escort-not-confirmed"]
        assert found["severity"] == "moderate"


@pytest.mark.parametrize(
    ("bipolar", "manic", "flagged"),
    [(None, False, False), (False, False, False), (True, False, True), (None, True, True)],
)
def test_map_intake__bipolar__mania_risk_flag(
    bipolar: bool | None, manic: bool, flagged: bool
) -> None:
    record = _record(bipolar_disorder=bipolar, contraindications={"bipolar_manic_phase": manic})
    resources = map_intake(record, UNPLANNED, CTX)
    assert ("mania-risk" in _parts(resources, "Flag")) == flagged
    assert ("bipolar_disorder" in _parts(resources, "Condition")) == bool(bipolar)
    if flagged:
        flag = _one(resources, "Flag", "mania-risk")
        assert _codes(flag["category"][0]) == ["clinical"]
        assert _codes(flag["code"]) == ["flag-mania-risk"]


# ---------------------------------------------------------------- tables


def _everything() -> list[Res]:
    """Resources covering every branch: all instruments, every finding, every alert."""
    record = _record(
        phq9=[3] * 9,
        gad7=[3] * 7,
        pcl5=[1] * 20,
        cssrs=dict.fromkeys(CSSRS_KEYS, True),
        pain_score=5,
        contraindications=dict.fromkeys(CONTRAINDICATION_KEYS, True),
        bipolar_disorder=True,
        last_oral_intake_at="2026-11-20T07:00:00-05:00",
        escort={"confirmed": False, "name": "A", "phone": "1"},
        notes="n",
    )
    others = [
        _record(phq9=[p] * 9, gad7=[g] * 7, cssrs={k: k == c for k in CSSRS_KEYS})
        for p, g, c in [
            (0, 0, ""),
            (1, 1, "wish_to_be_dead"),
            (2, 2, "active_ideation_with_method"),
            (1, 2, ""),
        ]
    ]
    out = map_intake(record, PLANNED, CTX)
    for other in others:
        out.extend(map_intake(other, PLANNED, CTX))
    out.extend(map_intake(_record(phq9=[2, 2, 2, 2, 2, 1, 1, 1, 0]), PLANNED, CTX))
    return out


def _emitted(value: Any, found: set[str]) -> set[str]:
    """Every code, linkId and canonical in the JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in {"code", "linkId", "questionnaire"} and isinstance(item, str):
                found.add(item.rsplit("/", 1)[-1])
            _emitted(item, found)
    elif isinstance(value, list):
        for item in value:
            _emitted(item, found)
    return found


@pytest.mark.parametrize("table", TABLES)
def test_tables__every_row__is_used_by_some_mapping(table: str) -> None:
    found = _emitted(_everything(), set())
    for key, codes in terminology.table(table).items():
        for code in codes:
            assert code.code in found, f"{table}: {key} {code.code} never emitted"


# ---------------------------------------------------------------- reverse, robustness


def _as_ehr_returns(resources: list[Res]) -> list[Res]:
    """Server ids, versions, references rewritten to them, keys reordered, extras added."""
    renamed = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{n}"
        for n, r in enumerate(resources)
    }
    out: list[Res] = []
    for n, res in enumerate(copy.deepcopy(resources)):
        res = _rewrite(res, renamed)
        res["id"] = str(n)
        res["meta"] = {
            "versionId": "2",
            "lastUpdated": "2026-11-21T10:00:00Z",
            **res.get("meta", {}),
        }
        res["text"] = {"status": "generated", "div": "<div>x</div>"}
        out.append(dict(reversed(list(res.items()))))
    return list(reversed(out))


def _rewrite(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: renamed.get(v, v) if k == "reference" else _rewrite(v, renamed)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, renamed) for v in value]
    return value


def _encounter(encounter_id: str) -> Res:
    ident = identity.encounter(CTX, encounter_id)
    return {"resourceType": "Encounter", "id": ident.id, "identifier": [ident.identifier()]}


def test_unmap_intake__ehr_returned_copies__still_rebuilds_record() -> None:
    sub = load_example("typical-ketamine-infusion")
    assert sub.intake_screening is not None
    resources = map_intake(sub.intake_screening, scope_of(sub), CTX)
    returned = _as_ehr_returns([_encounter(sub.encounter_id), *resources])
    assert unmap_intake(returned, scope_of(sub), CTX) == sub.intake_screening


def test_unmap_intake__other_encounters_screening__ignored() -> None:
    ours = _record(pain_score=1)
    theirs = _record(screening_id="SCR-0", pain_score=9)
    other_scope = EncounterScope("ENC-2", "MRN-1")
    resources = [
        _encounter("ENC-1"),
        _encounter("ENC-2"),
        *map_intake(theirs, other_scope, CTX),
        *map_intake(ours, UNPLANNED, CTX),
    ]
    assert unmap_intake(_as_ehr_returns(resources), UNPLANNED, CTX) == ours
    assert unmap_intake(_as_ehr_returns(resources), other_scope, CTX) == theirs


def test_unmap_intake__derived_resources_dropped__rebuilt_from_responses_alone() -> None:
    record = _record(
        phq9=[1] * 9, cssrs=dict.fromkeys(CSSRS_KEYS, False), bipolar_disorder=True, notes="x"
    )
    responses = _of(map_intake(record, PLANNED, CTX), "QuestionnaireResponse")
    assert unmap_intake(responses, PLANNED, CTX) == record


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(record=intake_screenings())
def test_map_intake__generated_records__valid_and_round_trip(record: IntakeScreening) -> None:
    resources = map_intake(record, PLANNED, CTX)
    for res in resources:
        assert_model_equivalent(res)
    assert unmap_intake(resources, PLANNED, CTX) == record
    assert unmap_intake(_as_ehr_returns(resources), PLANNED, CTX) == record


def test_map_intake__observations_not_self_reported__performed_by_the_clinic() -> None:
    resources = map_intake(_record(), UNPLANNED, CTX)
    clinic = identity.organization(CTX).ref(CTX.clinic_name)
    fasting = _one(resources, "Observation", "fasting-duration")
    assert fasting["performer"] == [clinic]
