"""The care records to FHIR and back: consent, discharge, the treatment course, the drug
product, and the Spravato REMS record with its printable page."""

from __future__ import annotations

import re
from html import escape, unescape
from pathlib import Path
from typing import Any

import pytest

from mappings.care import REMS_ITEMS, RemsItem, render_rems_page
from mappings.common.narrative import with_narratives
from mappings.context import MappingContext
from mappings.encounter import map_submission, unmap_submission
from tests.unit.mappings.fhircheck import assert_golden, assert_model_equivalent, load_example

CTX = MappingContext()
GOLDEN = Path(__file__).parent / "golden" / "care"
REMS = "esketamine-rems-session"
CARE_TYPES = ("Consent", "CarePlan", "Medication", "Questionnaire", "QuestionnaireResponse")
Res = dict[str, Any]


def _mapped(name: str = REMS) -> list[Res]:
    return map_submission(load_example(name), CTX)


def _one(resources: list[Res], resource_type: str, code: str | None = None) -> Res:
    found = [
        r
        for r in resources
        if r["resourceType"] == resource_type
        and (code is None or code in str(r.get("code")) or code in str(r.get("identifier")))
    ]
    assert len(found) == 1, (resource_type, code, len(found))
    return found[0]


def _care(resources: list[Res]) -> list[Res]:
    discharge = _one(resources, "Observation", "discharge-readiness")
    return [r for r in resources if r["resourceType"] in CARE_TYPES] + [discharge]


def test_map_care__rems_example__matches_golden() -> None:
    assert_golden(GOLDEN / f"{REMS}.json", _care(_mapped()))


def test_map_care__rems_example__every_resource_is_what_its_r4_model_accepts() -> None:
    for res in _care(_mapped()):
        assert_model_equivalent(res)


def test_map_care__narratives__generated_for_every_care_resource() -> None:
    for res in _care(_mapped()):
        assert res["text"]["status"] == "generated", res["resourceType"]
        assert with_narratives([res]) == [res]


def test_consent__treatment_scope_off_label_date_and_witness() -> None:
    consent = _one(_mapped(), "Consent")

    assert consent["scope"]["coding"][0]["code"] == "treatment"
    assert consent["dateTime"] == "2026-11-19T08:40:00-05:00"
    assert "induction series of 8 sessions" in consent["provision"]["code"][0]["text"]
    by_url = {e["url"]: e for e in consent["extension"]}
    assert by_url[CTX.extension_url("off-label-use-disclosed")]["valueBoolean"] is False
    witness = by_url["http://hl7.org/fhir/StructureDefinition/consent-Witness"]
    assert witness["valueReference"]["display"] == "Jon Ellis, RN"


def test_discharge__fit_to_leave_time_escort_and_each_instruction() -> None:
    found = _one(_mapped(), "Observation", "discharge-readiness")

    assert found["effectiveDateTime"] == "2026-12-03T11:15:00-05:00"
    codes = {c["code"]["coding"][0]["code"]: c["valueBoolean"] for c in found["component"]}
    assert codes["escort-confirmed"] is True
    assert {
        "instruction-no-driving-24h",
        "instruction-no-alcohol-24h",
        "instruction-no-major-decisions-24h",
        "instruction-crisis-line-988",
    } <= set(codes)


def test_course__careplan_and_the_encounter_names_its_place_in_it() -> None:
    resources = _mapped()
    plan = _one(resources, "CarePlan")
    encounter = _one(resources, "Encounter")

    (session,) = encounter["extension"]
    parts = {p["url"]: p for p in session["extension"]}
    assert parts["carePlan"]["valueReference"] == {
        "reference": f"CarePlan/{plan['id']}",
        "display": "session 4 of 8",
    }
    assert parts["sessionNumber"]["valuePositiveInt"] == 4
    assert plan["extension"][0]["valuePositiveInt"] == 8
    assert plan["title"] == "Induction series"


def test_course__same_course_of_two_patients__two_careplans() -> None:
    first = load_example(REMS)
    second = first.model_copy(
        update={"patient": first.patient.model_copy(update={"mrn": "MRN-OTHER"})}
    )

    plans = [_one(map_submission(s, CTX), "CarePlan")["id"] for s in (first, second)]

    assert plans[0] != plans[1]


def test_drug_product__medication_with_ndc_rxnorm_lot_expiry__named_by_the_administration() -> None:
    resources = _mapped()
    medication = _one(resources, "Medication")
    administration = next(
        r
        for r in resources
        if r["resourceType"] == "MedicationAdministration" and "medicationReference" in r
    )

    systems = {c["system"]: c["code"] for c in medication["code"]["coding"]}
    assert systems["http://hl7.org/fhir/sid/ndc"] == "50458-028-02"
    assert systems["http://www.nlm.nih.gov/research/umls/rxnorm"] in ("2201623", "2201625")
    assert medication["batch"] == {"lotNumber": "KJ4471B", "expirationDate": "2027-08-31"}
    assert administration["medicationReference"]["reference"] == f"Medication/{medication['id']}"
    assert "medicationCodeableConcept" not in administration


def test_provider__family_and_given__on_the_practitioner() -> None:
    practitioners = [r for r in _mapped() if r["resourceType"] == "Practitioner"]

    names = [p["name"][0] for p in practitioners]
    assert {"family": "Okafor", "given": ["Amara"]} in names
    assert {"text": "Jon Ellis, RN", "family": "Ellis", "given": ["Jon"]} in names


def test_unmap_submission__rems_example__gives_back_every_care_record() -> None:
    sub = load_example(REMS)

    assert unmap_submission(_mapped(), CTX) == sub


# ---------------------------------------------------------------- the REMS record


def _leaves(items: tuple[RemsItem, ...]) -> list[RemsItem]:
    out: list[RemsItem] = []
    for item in items:
        out.extend(_leaves(item.items) if item.items else [item])
    return out


def test_rems_response__complete_session__completed_and_validates_its_model() -> None:
    response = _one(_mapped(), "QuestionnaireResponse", "rems-monitoring")

    assert response["status"] == "completed"
    assert (
        response["questionnaire"]
        == f"{CTX.namespace}/Questionnaire/spravato-rems-patient-monitoring"
    )
    assert_model_equivalent(response)


def test_rems_response__session_without_assessments_or_discharge__in_progress() -> None:
    response = _one(_mapped("esketamine-session"), "QuestionnaireResponse", "rems-monitoring")

    assert response["status"] == "in-progress"
    assert "assessment" not in [i["linkId"] for i in response["item"]]


def test_rems_response__ketamine_session__none() -> None:
    assert not [
        r for r in _mapped("typical-ketamine-infusion") if r["resourceType"] == "Questionnaire"
    ]


def _cells(page: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for classes, link, value in re.findall(
        r'<td( class="missing")? data-link-id="([^"]+)">(.*?)</td>', page
    ):
        found.setdefault(link, []).append((classes, unescape(value)))
    return found


def _page(name: str = REMS) -> str:
    resources = _mapped(name)
    return render_rems_page(
        _one(resources, "Questionnaire"),
        _one(resources, "QuestionnaireResponse", "rems-monitoring"),
        _one(resources, "Patient"),
    )


def test_rems_page__esketamine_session__every_item_appears_filled_in() -> None:
    page = _page()
    cells = _cells(page)

    for item in _leaves(REMS_ITEMS):
        assert item.text in page, item.link_id
        assert cells.get(item.link_id), f"no row for {item.link_id}"
        for classes, value in cells[item.link_id]:
            assert not classes, f"{item.link_id} is not filled in"
            assert value.strip(), item.link_id
    assert len(cells["assessment-time"]) == 3


def test_rems_page__values_as_recorded() -> None:
    cells = {link: [v for _, v in values] for link, values in _cells(_page()).items()}

    assert cells["dose"] == ["56 mg"]
    assert cells["dose-time"] == ["2026-12-03 09:10 (UTC-05:00)"]
    assert cells["bp-before-systolic"] == ["128 mmHg"]
    assert cells["bp-after-diastolic"] == ["90 mmHg"]
    assert cells["sedation"] == ["Yes", "No", "No"]
    assert cells["ready-to-leave"] == ["2026-12-03 11:15 (UTC-05:00)"]
    assert cells["adverse-event-description"] == ["dissociation (mild)"]
    assert "Rosa Delgado" in _page()


def test_rems_page__missing_items__say_not_recorded() -> None:
    cells = _cells(_page("esketamine-session"))

    assert cells["sedation"] == [(' class="missing"', "not recorded")]
    assert cells["ready-to-leave"][0][0] == ""  # the recovery end stands in


@pytest.mark.parametrize("text", ["<script>", "a & b"])
def test_rems_page__patient_name__escaped(text: str) -> None:
    resources = _mapped()
    patient = _one(resources, "Patient")
    patient["name"][0]["family"] = text

    page = render_rems_page(
        _one(resources, "Questionnaire"),
        _one(resources, "QuestionnaireResponse", "rems-monitoring"),
        patient,
    )

    assert escape(text) in page
    assert text not in page


# ---------------------------------------------------------------- the indication's episode


@pytest.mark.parametrize(("episode", "icd10"), [("single", "F32.9"), ("recurrent", "F33.9")])
def test_indication__depression_with_episode_and_no_icd10__gets_the_one_code_that_fits(
    episode: str, icd10: str
) -> None:
    sub = load_example("esketamine-session")
    reason = sub.reason
    assert reason is not None
    sub = sub.model_copy(update={"reason": reason.model_copy(update={"episode": episode})})

    resources = map_submission(sub, CTX)
    condition = _one(resources, "Condition")

    icd = [c for c in condition["code"]["coding"] if c["system"].endswith("icd-10-cm")]
    assert [c["code"] for c in icd] == [icd10]
    assert "userSelected" not in icd[0]
    assert unmap_submission(resources, CTX) == sub


def test_indication__depression_without_episode__no_icd10_code_guessed() -> None:
    condition = _one(_mapped("esketamine-session"), "Condition")

    assert not [c for c in condition["code"]["coding"] if c["system"].endswith("icd-10-cm")]
