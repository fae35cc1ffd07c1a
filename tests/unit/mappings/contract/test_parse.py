"""Decoding and entry points: JSON-level problems, the examples, reporting every error."""

from __future__ import annotations

import json

import pytest

from mappings.contract import EncounterSubmission, parse_submission, parse_vitals_submission
from mappings.contract.parse import MalformedJson
from mappings.errors import ContractViolation
from tests.unit.mappings.contract.support import (
    EXAMPLE_NAMES,
    TODAY,
    assert_has_error,
    assert_only_error,
    errors_of,
    example,
    example_bytes,
)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_shared_example__as_bytes__is_accepted_unchanged(name: str) -> None:
    submission = parse_submission(example_bytes(name), today=TODAY)

    assert isinstance(submission, EncounterSubmission)
    assert submission.model_dump(mode="json", exclude_none=True) == _with_defaults(example(name))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_shared_example__as_text_and_as_mapping__parse_to_the_same_model(name: str) -> None:
    from_bytes = parse_submission(example_bytes(name))

    assert parse_submission(example_bytes(name).decode("utf-8")) == from_bytes
    assert parse_submission(example(name)) == from_bytes


def _with_defaults(doc: dict[str, object]) -> dict[str, object]:
    """The document as the model dumps it: medication instruction defaults to continue."""
    review = doc.get("medication_review")
    if isinstance(review, dict):
        for med in review["medications"]:
            med.setdefault("instruction", "continue")
    return doc


def test_json__syntax_error__names_root_with_line_and_column() -> None:
    error = assert_only_error('{"encounter_id": "E1",}', "$", "not valid JSON")

    assert "line 1" in error.message


def test_json__not_utf8__names_root() -> None:
    assert_only_error(b'{"encounter_id": "\xff"}', "$", "not valid UTF-8")


@pytest.mark.parametrize(
    ("text", "kind"), [("[]", "an array"), ('"x"', "a string"), ("3", "a number"), ("null", "null")]
)
def test_json__top_level_not_an_object__names_root(text: str, kind: str) -> None:
    assert_only_error(text, "$", f"must be a JSON object, got {kind}")


def test_json__duplicate_key__names_the_key_path() -> None:
    text = json.dumps(example()).replace('"mrn": "MRN-004211"', '"mrn": "MRN-004211", "mrn": "X"')

    assert_only_error(text, "patient.mrn", "appears more than once")


def test_json__duplicate_key_at_top_level__names_the_key() -> None:
    text = json.dumps(example())[:-1] + ', "status": "finished"}'

    assert_only_error(text, "status", "appears more than once")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json__non_finite_number__names_the_value_path(literal: str) -> None:
    text = json.dumps(example()).replace('"value": 68.0', f'"value": {literal}')

    assert_only_error(text, "infusion.weight.value", f"{literal} is not a JSON number")


def test_json__unpaired_surrogate__names_the_string() -> None:
    text = json.dumps(example()).replace('"Springfield"', '"Spring\\ud800field"')

    assert_only_error(text, "patient.address.city", "unpaired surrogate")


@pytest.mark.parametrize("char", ["\u0000", "\u0001", "\u0008", "\u000b", "\u001b", "\u001f"])
def test_text__forbidden_control_character__names_the_field_not_malformed(char: str) -> None:
    doc = example()
    doc["patient"]["given_name"] = f"Ann{char}a"
    text = json.dumps(doc)  # JSON escapes it: sound JSON, but not a FHIR string

    error = assert_only_error(text, "patient.given_name", f"U+{ord(char):04X}")

    assert "position 3" in error.message
    assert "Ann" not in error.message
    with pytest.raises(ContractViolation) as caught:
        parse_submission(text)
    assert not isinstance(caught.value.__cause__, MalformedJson)  # a 422, not a 400


def test_text__tab_line_feed_and_carriage_return__allowed() -> None:
    doc = example()
    doc["infusion"]["notes"] = "line one\r\nline two\tend"

    assert parse_submission(json.dumps(doc)).infusion is not None


def test_text__control_character_in_nested_list_and_in_a_record_alone__named() -> None:
    doc = example()
    doc["medication_review"]["medications"][1]["note"] = "x\u0000"
    assert_only_error(doc, "medication_review.medications[1].note", "U+0000")
    record = {**example()["vitals"][0], "encounter_id": "E-1", "patient_mrn": "M-1"}
    record["position"] = "sitting\u0007"
    errors = errors_of(record, parse_vitals_submission)
    assert_has_error(errors, "position", "U+0007")


def test_text__control_character_in_a_key__named_by_its_object_and_escaped() -> None:
    doc = example()
    doc["patient"]["bad\u0000key"] = "x"

    errors = errors_of(json.dumps(doc))

    assert_has_error(errors, "patient", "a key holds the control character U+0000")
    assert all("\u0000" not in e.path for e in errors)  # the unknown key's path is escaped


def test_mapping_input__wrong_type_at_top__names_root() -> None:
    assert_only_error([1, 2], "$", "must be a JSON object, got an array")


def test_violation__is_raised_instead_of_pydantic_errors_with_plain_paths() -> None:
    with pytest.raises(ContractViolation) as caught:
        parse_submission({"encounter_id": 7})

    assert [(e.path, e.message) for e in caught.value.errors] == [
        ("encounter_id", "must be a string"),
        ("patient", "required field is missing"),
        ("status", "required field is missing"),
        ("start", "required field is missing"),
    ]


def test_document__with_several_errors__reports_every_one_of_them() -> None:
    doc = example()
    doc["start"] = "2026-11-20T09:00:00"
    doc["patient"]["favourite_colour"] = "blue"
    doc["providers"][0]["npi"] = "1234567890"
    doc["intake_screening"]["phq9"] = [1, 2, 3]
    del doc["intake_screening"]["contraindications"]["pregnant"]
    doc["infusion"]["total_dose_mg"] = 50
    doc["vitals"][1]["diastolic"]["value"] = 190
    doc["vitals"][2]["spo2"]["unit"] = "percent"
    doc["medication_review"]["reviewed_by"] = "PRV-99"

    errors = errors_of(doc)

    assert_has_error(errors, "start", "UTC offset")
    assert_has_error(errors, "patient.favourite_colour", "unknown field (not in contract v1)")
    assert_has_error(errors, "providers[0].npi", "NPI 1234567890 fails the check digit")
    assert_has_error(errors, "intake_screening.phq9", "PHQ-9 needs exactly 9 answers, got 3")
    assert_has_error(errors, "intake_screening.contraindications.pregnant", "required")
    assert_has_error(errors, "infusion.total_dose_mg", "does not agree")
    assert_has_error(errors, "vitals[1].systolic", "must be greater than diastolic 190 mmHg")
    assert_has_error(errors, "vitals[2].spo2.unit", "must be one of: %")
    assert_has_error(errors, "medication_review.reviewed_by", "names provider PRV-99")
    assert len(errors) == 9, errors


def test_document__errors_are_listed_in_the_violation_message() -> None:
    doc = example()
    doc["vitals"][1]["diastolic"]["value"] = 190

    with pytest.raises(ContractViolation, match=r"vitals\[1\]\.systolic: systolic 146 mmHg"):
        parse_submission(doc)


def test_duplicate_key_and_other_error__both_reported() -> None:
    doc = example()
    doc["vitals"][0]["heart_rate"]["unit"] = "bpm"
    text = json.dumps(doc).replace('"sex": "female"', '"sex": "female", "sex": "female"')

    errors = errors_of(text)

    assert_has_error(errors, "patient.sex", "appears more than once")
    assert_has_error(errors, "vitals[0].heart_rate.unit", "must be one of: /min")
    assert len(errors) == 2
