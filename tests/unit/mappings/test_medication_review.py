from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings import terminology
from mappings.common import identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure, MedicationReview, Provider
from mappings.medication_review import refs
from mappings.medication_review.codes import table_code
from mappings.medication_review.review import map_medication_review, unmap_medication_review
from tests.unit.mappings.fhircheck import (
    EXAMPLE_NAMES,
    assert_golden,
    assert_model_equivalent,
    load_example,
)
from tests.unit.mappings.strategies import (
    infusion_procedures,
    medication_reviews,
    providers,
)

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
GOLDEN = Path(__file__).parent / "golden" / "medication_review"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REVIEWER = Provider.model_validate(
    {"provider_id": "PRV-1", "name": "Dr. A. Reviewer", "role": "psychiatrist"}
)
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
NOT_DONE = InfusionProcedure.model_validate(
    {
        "procedure_id": "INF-2",
        "medication": "esketamine",
        "route": "intranasal",
        "status": "not_done",
        "status_reason": "blood pressure 182/112 before dosing",
        "total_dose_mg": 56,
    }
)
SCOPE = EncounterScope("ENC-1", "MRN-1", (REVIEWER,), INFUSION)
PER_RECORD = EncounterScope("ENC-1", "MRN-1")

Res = dict[str, Any]


def _review(**fields: Any) -> MedicationReview:
    doc = {"review_id": "MR-1", "reviewed_at": "2026-11-20T08:50:00-05:00", "medications": []}
    return MedicationReview.model_validate({**doc, **fields})


def _map(record: MedicationReview, scope: EncounterScope = SCOPE) -> list[Res]:
    return cast(list[Res], map_medication_review(record, scope, CTX))


def _of_type(resources: list[Res], resource_type: str) -> list[Res]:
    return [r for r in resources if r["resourceType"] == resource_type]


def _one(resources: list[Res], resource_type: str) -> Res:
    (found,) = _of_type(resources, resource_type)
    return found


def _example(name: str) -> tuple[MedicationReview, EncounterScope]:
    sub = load_example(name)
    assert sub.medication_review is not None
    scope = EncounterScope(
        sub.encounter_id, sub.patient.mrn, tuple(sub.providers or ()), sub.infusion
    )
    return sub.medication_review, scope


def _server_id(value: str) -> str:
    return str(int(hashlib.sha256(value.encode()).hexdigest()[:8], 16))


def _renamed(value: Any) -> Any:
    """A deep copy with every `Type/<our id>` reference renamed as a server would."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                rtype, _, rid = item.partition("/")
                out[key] = f"{rtype}/{_server_id(rid)}"
            else:
                out[key] = _renamed(item)
        return out
    if isinstance(value, list):
        return [_renamed(item) for item in value]
    return value


def _as_ehr_returns(resources: list[Res]) -> list[Res]:
    """What an EHR hands back: its ids and versions, narrative added, order changed."""
    out = []
    for res in reversed(resources):
        copy = _renamed(res)
        copy["id"] = _server_id(res["id"])
        copy["meta"] = {**copy["meta"], "versionId": "3", "lastUpdated": "2026-11-21T10:00:00Z"}
        copy["text"] = {"status": "generated", "div": "<div>...</div>"}
        copy["identifier"] = [{"system": "urn:ehr:local", "value": "X1"}, *copy["identifier"]]
        out.append(dict(reversed(list(copy.items()))))
    return out


# ---------------------------------------------------------------- examples


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_medication_review__examples__models_accept_every_resource(name: str) -> None:
    record, scope = _example(name)
    for res in _map(record, scope):
        assert_model_equivalent(res)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_medication_review__examples__match_golden(name: str) -> None:
    record, scope = _example(name)
    assert_golden(GOLDEN / f"{name}.json", _map(record, scope))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_medication_review__examples__round_trip(name: str) -> None:
    record, scope = _example(name)
    assert unmap_medication_review(_map(record, scope), scope, CTX) == record


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_unmap_medication_review__ehr_returned_copies__still_round_trip(name: str) -> None:
    record, scope = _example(name)
    resources = _as_ehr_returns(_map(record, scope))
    assert unmap_medication_review(resources, scope, CTX) == record


def test_map_medication_review__typical__procedure_statements_allergy_and_two_issues() -> None:
    record, scope = _example("typical-ketamine-infusion")
    types = [r["resourceType"] for r in _map(record, scope)]
    assert types == [
        "Procedure",
        "MedicationStatement",
        "MedicationStatement",
        "AllergyIntolerance",
        "DetectedIssue",
        "DetectedIssue",
    ]


def test_unmap_medication_review__no_review_procedure__none() -> None:
    assert unmap_medication_review([], SCOPE, CTX) is None


# ---------------------------------------------------------------- the review Procedure


def test_review_procedure__coded_reconciliation_completed_with_performer_and_note() -> None:
    proc = _one(_map(_review(reviewed_by="PRV-1", notes="reconciled with pharmacy")), "Procedure")
    assert proc["status"] == "completed"
    assert proc["code"]["coding"] == [
        {"system": SNOMED, "code": "430193006", "display": "Medication reconciliation"}
    ]
    assert proc["performedDateTime"] == "2026-11-20T08:50:00-05:00"
    assert proc["subject"] == identity.patient(CTX, "MRN-1").ref()
    assert proc["encounter"] == identity.encounter(CTX, "ENC-1").ref()
    actor = proc["performer"][0]["actor"]
    assert actor["reference"] == identity.practitioner(CTX, "PRV-1").reference
    assert actor["display"] == "Dr. A. Reviewer"
    assert proc["note"] == [{"text": "reconciled with pharmacy"}]


def test_review__no_reviewer__no_performer_source_or_recorder() -> None:
    meds = [{"name": "sertraline", "status": "active"}]
    resources = _map(_review(medications=meds, allergies=[{"substance": "latex"}]))
    assert "performer" not in _one(resources, "Procedure")
    assert "informationSource" not in _one(resources, "MedicationStatement")
    assert "recorder" not in _one(resources, "AllergyIntolerance")


def test_review__reviewer_unknown_to_scope__reference_without_display_round_trips() -> None:
    record = _review(reviewed_by="PRV-9")
    resources = _map(record, PER_RECORD)
    actor = _one(resources, "Procedure")["performer"][0]["actor"]
    assert "display" not in actor
    assert unmap_medication_review(resources, PER_RECORD, CTX) == record


def test_unmap__reference_identifier_dropped_by_ehr__reviewer_found_by_practitioner() -> None:
    record = _review(reviewed_by="PRV-1")
    practitioner: Res = {
        "resourceType": "Practitioner",
        "id": "777",
        "identifier": [identity.practitioner(CTX, "PRV-1").identifier()],
    }
    resources = _map(record)
    resources[0]["performer"] = [{"actor": {"reference": "Practitioner/777"}}]
    assert unmap_medication_review([*resources, practitioner], SCOPE, CTX) == record


# ---------------------------------------------------------------- medication statements

STATUS_CASES = [
    ("active", "continue", "active"),
    ("active", "hold", "on-hold"),
    ("active", "stop", "stopped"),
    ("on_hold", "continue", "on-hold"),
    ("on_hold", "hold", "on-hold"),
    ("on_hold", "stop", "stopped"),
    ("stopped", "continue", "stopped"),
    ("stopped", "hold", "stopped"),
    ("stopped", "stop", "stopped"),
]


@pytest.mark.parametrize(("status", "instruction", "fhir_status"), STATUS_CASES)
def test_statement_status__status_and_instruction__r4_status_and_both_recoverable(
    status: str, instruction: str, fhir_status: str
) -> None:
    meds = [{"name": "sertraline", "status": status, "instruction": instruction}]
    record = _review(medications=meds)
    resources = _map(record)
    statement = _one(resources, "MedicationStatement")
    assert statement["status"] == fhir_status
    assert unmap_medication_review(resources, SCOPE, CTX) == record


@pytest.mark.parametrize(
    ("instruction", "code"), [("hold", "infusion-day-hold"), ("stop", "infusion-day-stop")]
)
def test_statement__hold_or_stop_instruction__coded_status_reason(
    instruction: str, code: str
) -> None:
    meds = [{"name": "lorazepam", "status": "active", "instruction": instruction}]
    statement = _one(_map(_review(medications=meds)), "MedicationStatement")
    assert statement["statusReason"][0]["coding"][0]["code"] == code


def test_statement__continue__no_status_reason() -> None:
    meds = [{"name": "lorazepam", "status": "active"}]
    assert "statusReason" not in _one(_map(_review(medications=meds)), "MedicationStatement")


@pytest.mark.parametrize(("instruction", "status"), [("hold", "on_hold"), ("stop", "stopped")])
def test_unmap_statement__extensions_stripped_by_ehr__status_and_reason_still_read(
    instruction: str, status: str
) -> None:
    record = _review(medications=[{"name": "x", "status": status, "instruction": instruction}])
    resources = _map(record)
    _one(resources, "MedicationStatement").pop("extension")
    assert unmap_medication_review(resources, SCOPE, CTX) == record


def test_statement__r4_elements__category_subject_context_asserted_source_derived_from() -> None:
    record = _review(reviewed_by="PRV-1", medications=[{"name": "lithium", "status": "active"}])
    resources = _map(record)
    statement = _one(resources, "MedicationStatement")
    assert statement["category"]["coding"][0]["code"] == "community"
    assert statement["subject"] == identity.patient(CTX, "MRN-1").ref()
    assert statement["context"] == identity.encounter(CTX, "ENC-1").ref()
    assert "encounter" not in statement
    assert statement["dateAsserted"] == "2026-11-20T08:50:00-05:00"
    assert statement["informationSource"]["reference"].startswith("Practitioner/")
    assert statement["derivedFrom"] == [refs.review(CTX, "ENC-1~MR-1").ref()]


def test_statement__dose_frequency_note__kept_apart() -> None:
    med = {
        "name": "sertraline",
        "status": "active",
        "dose": "100 mg",
        "frequency": "once daily",
        "note": "take with food",
    }
    statement = _one(_map(_review(medications=[med])), "MedicationStatement")
    assert statement["dosage"] == [{"text": "100 mg", "timing": {"code": {"text": "once daily"}}}]
    assert statement["note"] == [{"text": "take with food"}]


@pytest.mark.parametrize(
    "med",
    [
        {"name": "a", "status": "active", "dose": "5 mg"},
        {"name": "a", "status": "active", "frequency": "at night"},
        {"name": "a", "status": "active"},
    ],
)
def test_statement__dose_or_frequency_alone__round_trip(med: dict[str, str]) -> None:
    record = _review(medications=[med])
    resources = _map(record)
    assert ("dosage" in _one(resources, "MedicationStatement")) is (len(med) > 2)
    assert unmap_medication_review(resources, SCOPE, CTX) == record


def test_statements__order_of_the_list__kept_by_position() -> None:
    names = ["zolpidem", "amitriptyline", "memantine", "lithium"]
    record = _review(medications=[{"name": n, "status": "active"} for n in names])
    resources = _map(record)
    values = [r["identifier"][0]["value"] for r in _of_type(resources, "MedicationStatement")]
    assert values == ["ENC-1~MR-1~1", "ENC-1~MR-1~2", "ENC-1~MR-1~3", "ENC-1~MR-1~4"]
    back = unmap_medication_review(list(reversed(resources)), SCOPE, CTX)
    assert back is not None
    assert [m.name for m in back.medications] == names


# ---------------------------------------------------------------- drug codes


def test_drug_code__clinic_rxnorm__user_selected_and_wins_over_table() -> None:
    meds = [{"name": "sertraline", "status": "active", "rxnorm": "312940"}]
    drug = _one(_map(_review(medications=meds)), "MedicationStatement")["medicationCodeableConcept"]
    assert drug == {
        "coding": [{"system": RXNORM, "code": "312940", "userSelected": True}],
        "text": "sertraline",
    }


def test_drug_code__clinic_rxnorm_known_to_table__display_added() -> None:
    meds = [{"name": "Zoloft", "status": "active", "rxnorm": "36437"}]
    drug = _one(_map(_review(medications=meds)), "MedicationStatement")["medicationCodeableConcept"]
    assert drug["coding"] == [
        {"system": RXNORM, "code": "36437", "display": "sertraline", "userSelected": True}
    ]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("lorazepam", "6470"),
        ("  Lorazepam   ", "6470"),
        ("LORAZEPAM 0.5 mg tablet", "6470"),
        ("valproic acid", "11118"),
        ("Morphine", "7052"),
    ],
)
def test_drug_code__name_in_table__ingredient_coded_not_user_selected(name: str, code: str) -> None:
    record = _review(medications=[{"name": name, "status": "active"}])
    resources = _map(record)
    drug = _one(resources, "MedicationStatement")["medicationCodeableConcept"]
    assert [(c["code"], "userSelected" in c) for c in drug["coding"]] == [(code, False)]
    assert drug["text"] == name
    assert unmap_medication_review(resources, SCOPE, CTX) == record


def test_drug_code__unknown_name__text_only() -> None:
    statement = _one(
        _map(_review(medications=[{"name": "St John's wort", "status": "active"}])),
        "MedicationStatement",
    )
    assert statement["medicationCodeableConcept"] == {"text": "St John's wort"}


def test_drug_code__uncertain_table_row__text_only_but_still_screened() -> None:
    resources = _map(_review(medications=[{"name": "amphetamine", "status": "active"}]))
    statement = _one(resources, "MedicationStatement")
    assert statement["medicationCodeableConcept"] == {"text": "amphetamine"}
    assert _one(resources, "DetectedIssue")["severity"] == "high"


@pytest.mark.parametrize("key", sorted(terminology.table("medications")))
def test_medications_table__every_row__codes_its_name_unless_uncertain(key: str) -> None:
    code = terminology.code("medications", key)
    assert code.system == RXNORM
    assert table_code(key.upper()) == code
    statement = _one(
        _map(_review(medications=[{"name": key, "status": "active"}])), "MedicationStatement"
    )
    codings = statement["medicationCodeableConcept"].get("coding", [])
    expected = [] if code.certainty == "uncertain" else [code.code]
    assert [c["code"] for c in codings] == expected


# ---------------------------------------------------------------- allergies


def test_allergies__not_recorded__no_allergy_resource() -> None:
    record = _review(allergies=None)
    resources = _map(record)
    assert _of_type(resources, "AllergyIntolerance") == []
    back = unmap_medication_review(resources, SCOPE, CTX)
    assert back is not None
    assert back.allergies is None


def test_allergies__empty_list__one_confirmed_no_known_allergy() -> None:
    record = _review(allergies=[], reviewed_by="PRV-1")
    resources = _map(record)
    nka = _one(resources, "AllergyIntolerance")
    assert nka["code"]["coding"] == [
        {"system": SNOMED, "code": "716186003", "display": "No known allergy"}
    ]
    assert nka["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert nka["clinicalStatus"]["coding"][0]["code"] == "active"
    assert nka["recorder"]["reference"].startswith("Practitioner/")
    back = unmap_medication_review(resources, SCOPE, CTX)
    assert back is not None
    assert back.allergies == []


def test_allergy__reported__unconfirmed_with_reaction_severity_patient_encounter() -> None:
    allergy = {"substance": "penicillin", "reaction": "hives", "severity": "moderate"}
    found = _one(_map(_review(allergies=[allergy])), "AllergyIntolerance")
    assert found["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert found["code"] == {"text": "penicillin"}
    assert "category" not in found
    assert found["patient"] == identity.patient(CTX, "MRN-1").ref()
    assert found["encounter"] == identity.encounter(CTX, "ENC-1").ref()
    assert found["recordedDate"] == "2026-11-20T08:50:00-05:00"
    assert found["reaction"] == [{"manifestation": [{"text": "hives"}], "severity": "moderate"}]


def test_allergy__drug_in_table__rxnorm_coded_medication_category() -> None:
    found = _one(_map(_review(allergies=[{"substance": "Ketamine"}])), "AllergyIntolerance")
    assert found["category"] == ["medication"]
    assert found["code"]["coding"][0]["code"] == "6130"
    assert "reaction" not in found


def test_allergy__severity_without_reaction__manifestation_data_absent_and_round_trips() -> None:
    record = _review(allergies=[{"substance": "sulfa", "severity": "severe", "rxnorm": "10180"}])
    resources = _map(record)
    reaction = _one(resources, "AllergyIntolerance")["reaction"][0]
    assert reaction["manifestation"][0]["extension"][0]["valueCode"] == "unknown"
    assert unmap_medication_review(resources, SCOPE, CTX) == record


def test_unmap_allergies__listed_and_stale_no_known_allergy__listed_win() -> None:
    record = _review(allergies=[{"substance": "latex"}])
    stale = _map(_review(allergies=[]))
    resources = [*_map(record), _one(stale, "AllergyIntolerance")]
    assert unmap_medication_review(resources, SCOPE, CTX) == record


# ---------------------------------------------------------------- interactions

CLASS_EXAMPLES = [
    ("lorazepam", "cns-depressants", "moderate"),
    ("oxycodone", "opioids", "moderate"),
    ("naltrexone", "opioid-antagonists", "low"),
    ("lamotrigine", "lamotrigine", "low"),
    ("phenelzine", "maois", "high"),
    ("methylphenidate", "psychostimulants", "high"),
    ("escitalopram", "ssri-snri", "low"),
    ("theophylline", "methylxanthines", "moderate"),
]


@pytest.mark.parametrize(("name", "interaction_class", "severity"), CLASS_EXAMPLES)
def test_interaction__drug_of_class__drug_interaction_alert_with_4b_severity(
    name: str, interaction_class: str, severity: str
) -> None:
    resources = _map(_review(medications=[{"name": name, "status": "active"}]))
    issue = _one(resources, "DetectedIssue")
    assert_model_equivalent(issue)
    assert issue["status"] == "final"
    drg = issue["code"]["coding"][0]
    assert (drg["code"], drg["display"]) == ("DRG", "Drug Interaction Alert")
    assert issue["code"]["coding"][1]["code"] == f"interaction-{interaction_class}"
    assert issue["severity"] == severity
    assert issue["patient"] == identity.patient(CTX, "MRN-1").ref()
    assert issue["identifiedDateTime"] == "2026-11-20T08:50:00-05:00"
    assert name in issue["detail"]
    assert issue["identifier"][0]["value"] == f"ENC-1~MR-1~{interaction_class}"


def test_interaction_classes__every_class_has_an_example_and_alert_rows() -> None:
    classes = set(terminology.table("interaction_classes"))
    assert classes == {c for _, c, _ in CLASS_EXAMPLES}
    alerts = set(terminology.table("interaction_alerts"))
    expected = {"drug-interaction"} | {f"{p}-{c}" for c in classes for p in ("class", "severity")}
    assert alerts == expected


@pytest.mark.parametrize("interaction_class", sorted(terminology.table("interaction_classes")))
def test_interaction_classes__every_member__same_code_and_certainty_as_medications_table(
    interaction_class: str,
) -> None:
    for member in terminology.codes("interaction_classes", interaction_class):
        assert terminology.code("medications", member.display) == member


def test_interaction__session_started__implicates_statements_and_ketamine_administration() -> None:
    meds = [
        {"name": "lorazepam", "status": "active", "instruction": "hold"},
        {"name": "gabapentin", "status": "active"},
        {"name": "clonazepam", "status": "active"},
    ]
    issue = _one(_map(_review(medications=meds)), "DetectedIssue")
    assert issue["implicated"] == [
        refs.statement(CTX, "ENC-1~MR-1", 1).ref(),
        refs.statement(CTX, "ENC-1~MR-1", 3).ref(),
        identity.infusion_administration(CTX, "ENC-1~INF-1").ref(),
    ]
    assert issue["detail"].endswith("Implicated: lorazepam, clonazepam.")


def test_interaction__session_never_started__implicates_the_ketamine_order() -> None:
    scope = EncounterScope("ENC-1", "MRN-1", infusion=NOT_DONE)
    issue = _one(
        _map(_review(medications=[{"name": "phenelzine", "status": "active"}]), scope),
        "DetectedIssue",
    )
    assert issue["implicated"][-1] == identity.infusion_request(CTX, "ENC-1~INF-2").ref()


def test_interaction__per_record_review_without_infusion__statements_only() -> None:
    issue = _one(
        _map(_review(medications=[{"name": "tramadol", "status": "active"}]), PER_RECORD),
        "DetectedIssue",
    )
    assert issue["implicated"] == [refs.statement(CTX, "ENC-1~MR-1", 1).ref()]


def test_interaction__author_is_the_adapter_device() -> None:
    issue = _one(
        _map(_review(medications=[{"name": "fentanyl", "status": "active"}])), "DetectedIssue"
    )
    assert issue["author"] == identity.device(CTX).ref(CTX.adapter_name)


def test_interaction__stopped_medication__no_longer_screened() -> None:
    meds = [
        {"name": "escitalopram", "status": "stopped"},
        {"name": "phenelzine", "status": "on_hold"},
    ]
    (issue,) = _of_type(_map(_review(medications=meds)), "DetectedIssue")
    assert "interaction-maois" in str(issue)


def test_interaction__clinic_product_code_and_known_name__screened_by_name() -> None:
    meds = [{"name": "oxycodone 5 mg tablet", "status": "active", "rxnorm": "1049621"}]
    assert _one(_map(_review(medications=meds)), "DetectedIssue")["severity"] == "moderate"


def test_interaction__clinic_ingredient_code_with_brand_name__screened_by_code() -> None:
    meds = [{"name": "Nardil", "status": "active", "rxnorm": "8123"}]
    assert "interaction-maois" in str(_one(_map(_review(medications=meds)), "DetectedIssue"))


def test_interaction__no_class_drugs__no_issue() -> None:
    meds = [{"name": n, "status": "active"} for n in ("gabapentin", "bupropion", "lithium")]
    assert _of_type(_map(_review(medications=meds)), "DetectedIssue") == []


def test_interaction__several_classes__one_issue_each_in_table_order() -> None:
    meds = [{"name": n, "status": "active"} for n in ("sertraline", "morphine", "lorazepam")]
    issues = _of_type(_map(_review(medications=meds)), "DetectedIssue")
    classes = [i["identifier"][0]["value"].split("~")[-1] for i in issues]
    assert classes == ["cns-depressants", "opioids", "ssri-snri"]


# ---------------------------------------------------------------- generated records


@FAST
@given(st.data())
def test_round_trip__generated_reviews__lossless_and_models_accept(data: st.DataObject) -> None:
    staff = data.draw(st.lists(providers(), max_size=3, unique_by=lambda p: p.provider_id))
    infusion = data.draw(st.none() | infusion_procedures(staff))
    record = data.draw(medication_reviews(staff))
    scope = EncounterScope("ENC-1", "MRN-1", tuple(staff), infusion)
    resources = _map(record, scope)
    for res in resources:
        assert_model_equivalent(res)
    assert unmap_medication_review(resources, scope, CTX) == record
    assert unmap_medication_review(_as_ehr_returns(resources), scope, CTX) == record
