"""Field rules of the intake screening, the infusion doses and the medication review."""

from __future__ import annotations

import pytest

from mappings.contract import parse_submission
from tests.unit.mappings.contract.support import assert_only_error, example


@pytest.mark.parametrize(
    ("field", "answers", "message"),
    [
        ("phq9", [1] * 8, "PHQ-9 needs exactly 9 answers, got 8"),
        ("phq9", [1] * 10, "PHQ-9 needs exactly 9 answers, got 10"),
        ("gad7", [1] * 6, "GAD-7 needs exactly 7 answers, got 6"),
        ("pcl5", [1] * 19, "PCL-5 needs exactly 20 answers, got 19"),
    ],
)
def test_instrument__wrong_number_of_answers__says_how_many(
    field: str, answers: list[int], message: str
) -> None:
    doc = example()
    doc["intake_screening"][field] = answers

    assert_only_error(doc, f"intake_screening.{field}", message)


@pytest.mark.parametrize(
    ("field", "count", "bad", "message"),
    [
        ("phq9", 9, 4, "must be at most 3"),
        ("gad7", 7, -1, "must be at least 0"),
        ("pcl5", 20, 5, "must be at most 4"),
        ("phq9", 9, 1.5, "must be a whole number"),
        ("phq9", 9, True, "must be a whole number"),
    ],
)
def test_instrument__answer_out_of_range__names_the_item(
    field: str, count: int, bad: object, message: str
) -> None:
    doc = example()
    answers: list[object] = [0] * count
    answers[3] = bad
    doc["intake_screening"][field] = answers

    assert_only_error(doc, f"intake_screening.{field}[3]", message)


def test_pcl5__twenty_answers_up_to_4__is_accepted() -> None:
    doc = example()
    doc["intake_screening"]["pcl5"] = [4] * 20

    screening = parse_submission(doc).intake_screening
    assert screening is not None
    assert screening.pcl5 == [4] * 20


@pytest.mark.parametrize(
    ("value", "message"), [(11, "at most 10"), (-1, "at least 0"), (2.5, "whole")]
)
def test_pain_score__outside_0_to_10__is_rejected(value: object, message: str) -> None:
    doc = example()
    doc["intake_screening"]["pain_score"] = value

    assert_only_error(doc, "intake_screening.pain_score", message)


def test_contraindications__a_key_missing__names_the_key() -> None:
    doc = example()
    del doc["intake_screening"]["contraindications"]["pregnant"]

    assert_only_error(
        doc, "intake_screening.contraindications.pregnant", "required field is missing"
    )


def test_contraindications__value_not_boolean__must_be_true_or_false() -> None:
    doc = example()
    doc["intake_screening"]["contraindications"]["uncontrolled_glaucoma"] = 0

    assert_only_error(
        doc, "intake_screening.contraindications.uncontrolled_glaucoma", "true or false"
    )


def test_cssrs__a_key_missing__names_the_key() -> None:
    doc = example()
    del doc["intake_screening"]["cssrs"]["active_ideation_with_plan"]

    assert_only_error(doc, "intake_screening.cssrs.active_ideation_with_plan", "required")


def test_escort__without_confirmed__names_escort_confirmed() -> None:
    doc = example()
    del doc["intake_screening"]["escort"]["confirmed"]

    assert_only_error(doc, "intake_screening.escort.confirmed", "required field is missing")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("dose_mg_per_kg", 0, "must be greater than 0"),
    ("dose_mg_per_kg", 5.5, "must be at most 5"),
    ("total_dose_mg", 1001, "must be at most 1000"),
    ("total_dose_mg", "34", "must be a number"),
])  # fmt: skip
def test_infusion_dose__outside_its_bounds__is_rejected(
    field: str, value: object, message: str
) -> None:
    doc = example()
    doc["infusion"]["route"] = "intranasal"  # no weight-based agreement to get in the way
    doc["infusion"][field] = value

    assert_only_error(doc, f"infusion.{field}", message)


def test_medications__missing__is_required() -> None:
    doc = example()
    del doc["medication_review"]["medications"]

    assert_only_error(doc, "medication_review.medications", "required field is missing")


def test_medications__empty_list__means_no_current_medications() -> None:
    doc = example()
    doc["medication_review"]["medications"] = []

    review = parse_submission(doc).medication_review
    assert review is not None
    assert review.medications == []


def test_medication_instruction__absent__defaults_to_continue() -> None:
    doc = example()
    del doc["medication_review"]["medications"][1]["instruction"]

    review = parse_submission(doc).medication_review
    assert review is not None
    assert review.medications[1].instruction == "continue"


def test_medication_instruction__unknown__lists_the_choices() -> None:
    doc = example()
    doc["medication_review"]["medications"][1]["instruction"] = "pause"

    assert_only_error(
        doc, "medication_review.medications[1].instruction", "must be one of: continue, hold, stop"
    )


def test_allergy_severity__outside_the_enum__is_rejected() -> None:
    doc = example()
    doc["medication_review"]["allergies"][0]["severity"] = "life-threatening"

    assert_only_error(
        doc, "medication_review.allergies[0].severity", "must be one of: mild, moderate, severe"
    )
