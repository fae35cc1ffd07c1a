"""The care records of the contract: optional, and each bad value refused naming its field."""

from __future__ import annotations

import pytest

from mappings.contract import parse_submission
from tests.unit.mappings.contract.support import Doc, assert_only_error, example

REMS = "esketamine-rems-session"


def _rems(**changes: object) -> Doc:
    doc = example(REMS)
    doc.update(changes)
    return doc


def test_care_records__absent__documents_parse_as_before() -> None:
    sub = parse_submission(example("typical-ketamine-infusion"))

    assert (sub.consent, sub.discharge, sub.course, sub.rems_monitoring) == (None,) * 4
    assert sub.infusion is not None
    assert sub.infusion.drug_product is None


def test_care_records__the_rems_example__parse_in_full() -> None:
    sub = parse_submission(example(REMS))

    assert sub.consent is not None
    assert sub.consent.witnessed_by == "PRV-22"
    assert sub.course is not None
    assert (sub.course.session_number, sub.course.planned_sessions) == (4, 8)
    assert sub.infusion is not None
    assert sub.infusion.drug_product is not None
    assert sub.infusion.drug_product.lot_number == "KJ4471B"
    assert sub.rems_monitoring is not None
    assert len(sub.rems_monitoring.assessments) == 3


@pytest.mark.parametrize("ndc", ["50458-028-02", "0409-4887-02", "50458-0280-02", "12345-6789-1"])
def test_drug_product__ndc_as_printed__is_accepted(ndc: str) -> None:
    doc = example(REMS)
    doc["infusion"]["drug_product"]["ndc"] = ndc

    assert parse_submission(doc).infusion is not None


@pytest.mark.parametrize("ndc", ["5045802802", "50458-28-02", "NDC-50458", "50458-028-002"])
def test_drug_product__malformed_ndc__is_refused_naming_it(ndc: str) -> None:
    doc = example(REMS)
    doc["infusion"]["drug_product"]["ndc"] = ndc

    assert_only_error(doc, "infusion.drug_product.ndc", "must be an NDC")


def test_drug_product__expiration_not_a_date__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["infusion"]["drug_product"]["expiration_date"] = "08/2027"

    assert_only_error(doc, "infusion.drug_product.expiration_date", "must be a date YYYY-MM-DD")


def test_drug_product__without_lot__is_refused_naming_it() -> None:
    doc = example(REMS)
    del doc["infusion"]["drug_product"]["lot_number"]

    assert_only_error(doc, "infusion.drug_product.lot_number", "required field is missing")


def test_drug_product__lot_with_a_semicolon__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["infusion"]["drug_product"]["lot_number"] = "KJ4471;B"

    assert_only_error(doc, "infusion.drug_product.lot_number", "must be a lot number")


def test_course__session_beyond_the_plan__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["course"]["session_number"] = 9

    assert_only_error(doc, "course.session_number", "beyond the 8 planned sessions")


@pytest.mark.parametrize("value", [0, -1, 1001, 4.0, "4"])
def test_course__session_number_out_of_range_or_not_an_integer__is_refused(value: object) -> None:
    doc = example(REMS)
    doc["course"]["session_number"] = value

    assert_only_error(doc, "course.session_number", "")


def test_course__unknown_phase__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["course"]["phase"] = "continuation"

    assert_only_error(doc, "course.phase", "")


def test_consent__witness_not_a_provider_of_the_encounter__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["consent"]["witnessed_by"] = "PRV-99"

    assert_only_error(doc, "consent.witnessed_by", "names provider PRV-99")


def test_consent__off_label_disclosure_missing__is_refused_naming_it() -> None:
    doc = example(REMS)
    del doc["consent"]["off_label_disclosed"]

    assert_only_error(doc, "consent.off_label_disclosed", "")


def test_discharge__unknown_instruction__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["discharge"]["instructions_given"] = ["no_swimming"]

    assert_only_error(doc, "discharge.instructions_given[0]", "")


def test_discharge__instruction_twice__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["discharge"]["instructions_given"] = ["no_driving_24h", "no_driving_24h"]

    assert_only_error(doc, "discharge.instructions_given", "listed twice")


def test_discharge__fit_to_leave_before_the_visit__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["discharge"]["fit_to_leave_at"] = "2026-12-03T08:00:00-05:00"

    assert_only_error(doc, "discharge.fit_to_leave_at", "before the encounter's start")


def test_discharge__by_unknown_provider__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["discharge"]["discharged_by"] = "PRV-42"

    assert_only_error(doc, "discharge.discharged_by", "names provider PRV-42")


def test_rems_monitoring__for_ketamine__is_refused_naming_it() -> None:
    doc = example("typical-ketamine-infusion")
    doc["rems_monitoring"] = example(REMS)["rems_monitoring"]

    assert_only_error(doc, "rems_monitoring", "only for an esketamine session")


def test_rems_monitoring__assessment_before_the_dose__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["rems_monitoring"]["assessments"][1]["assessed_at"] = "2026-12-03T09:00:00-05:00"

    assert_only_error(doc, "rems_monitoring.assessments[1].assessed_at", "before the dose")


def test_rems_monitoring__no_assessment__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["rems_monitoring"]["assessments"] = []

    assert_only_error(doc, "rems_monitoring.assessments", "")


def test_rems_monitoring__sedation_as_text__is_refused_naming_it() -> None:
    doc = example(REMS)
    doc["rems_monitoring"]["assessments"][0]["sedation"] = "yes"

    assert_only_error(doc, "rems_monitoring.assessments[0].sedation", "must be true or false")


def test_provider__family_and_given_without_name__is_accepted() -> None:
    sub = parse_submission(example(REMS))

    assert sub.providers is not None
    assert sub.providers[0].name is None
    assert sub.providers[0].display_name == "Amara Okafor"


def test_provider__neither_name_nor_family_name__is_refused_naming_it() -> None:
    doc = example()
    del doc["providers"][0]["name"]

    assert_only_error(doc, "providers[0].family_name", "required when name is not given")


@pytest.mark.parametrize("code", ["major_depressive_disorder", "treatment_resistant_depression"])
def test_indication__depression_with_its_episode__is_accepted(code: str) -> None:
    doc = example()
    doc["reason"] = {"code": code, "episode": "recurrent"}

    reason = parse_submission(doc).reason
    assert reason is not None
    assert reason.episode == "recurrent"


def test_indication__episode_of_another_indication__is_refused_naming_it() -> None:
    doc = example()
    doc["reason"] = {"code": "ptsd", "episode": "single"}

    assert_only_error(doc, "reason.episode", "only for major_depressive_disorder")


def test_indication__episode_and_icd10_disagree__is_refused_naming_icd10() -> None:
    doc = example()
    doc["reason"] = {"code": "major_depressive_disorder", "episode": "single", "icd10": "F33.2"}

    assert_only_error(doc, "reason.icd10", "does not code a single-episode")
