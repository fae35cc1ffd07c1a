"""One rule per field: unknown fields, null, date-times, ids, text, people and codes."""

from __future__ import annotations

from datetime import date

import pytest

from mappings.contract import parse_submission
from tests.unit.mappings.contract.support import TODAY, assert_only_error, example


def test_unknown_field__at_top_level__is_rejected_by_name() -> None:
    doc = example()
    doc["clinic_notes"] = "x"

    assert_only_error(doc, "clinic_notes", "unknown field (not in contract v1)")


def test_unknown_field__deep_in_a_list__is_rejected_by_path() -> None:
    doc = example()
    doc["vitals"][2]["pain"] = {"value": 3, "unit": "/10"}

    assert_only_error(doc, "vitals[2].pain", "unknown field (not in contract v1)")


def test_unknown_field__with_an_odd_name__is_quoted_in_the_path() -> None:
    doc = example()
    doc["patient"]["first name"] = "Ana"

    assert_only_error(doc, 'patient["first name"]', "unknown field")


def test_required_field__missing__names_it() -> None:
    doc = example()
    del doc["patient"]["family_name"]

    assert_only_error(doc, "patient.family_name", "required field is missing")


def test_required_field__null__says_must_not_be_null() -> None:
    doc = example()
    doc["patient"]["given_name"] = None

    assert_only_error(doc, "patient.given_name", "must not be null")


def test_optional_field__null__is_treated_as_absent() -> None:
    doc = example()
    doc["patient"]["phone"] = None

    assert parse_submission(doc).patient.phone is None


@pytest.mark.parametrize("value", ["2026-11-20T08:40:00", "2026-11-20 08:40", "2026-11-20"])
def test_date_time__without_offset__asks_for_a_utc_offset(value: str) -> None:
    doc = example()
    doc["intake_screening"]["completed_at"] = value

    assert_only_error(
        doc,
        "intake_screening.completed_at",
        "date-time must carry a UTC offset, e.g. 2026-11-20T09:05:00-05:00 or ...Z",
    )


@pytest.mark.parametrize("value", [1763650800, "yesterday", "20261120T084000Z", True])
def test_date_time__not_an_rfc3339_string__is_rejected(value: object) -> None:
    doc = example()
    doc["infusion"]["adverse_events"][0]["onset"] = value

    assert_only_error(doc, "infusion.adverse_events[0].onset", "must be a date-time string like")


def test_date_time__impossible_calendar_value__is_rejected() -> None:
    doc = example()
    doc["vitals"][0]["taken_at"] = "2026-02-30T09:02:00-05:00"

    assert_only_error(doc, "vitals[0].taken_at", "must be a real date-time")


@pytest.mark.parametrize(
    "value", ["2026-11-20T14:02:00Z", "2026-11-20T19:32:00+05:30", "2026-11-20T09:02:00.250-05:00"]
)
def test_date_time__with_z_or_any_offset__is_accepted_and_keeps_its_offset(value: str) -> None:
    doc = example()
    doc["vitals"][0]["taken_at"] = value

    dumped = parse_submission(doc).model_dump(mode="json")["vitals"][0]["taken_at"]

    assert dumped[-6:] == value[-6:] or (value.endswith("Z") and dumped.endswith("Z"))


@pytest.mark.parametrize("value", ["", "MRN 004211", "MRN/004211", "x" * 65, "MRN~1", "Ñ-1"])
def test_id__outside_the_allowed_characters__is_rejected(value: str) -> None:
    doc = example()
    doc["patient"]["mrn"] = value

    assert_only_error(doc, "patient.mrn", "must be an id of 1-64 characters from A-Z a-z 0-9 . _ -")


@pytest.mark.parametrize("value", ["a", "x" * 64, "A.b_c-9"])
def test_id__of_allowed_characters__is_accepted(value: str) -> None:
    doc = example()
    doc["vitals"][0]["vitals_id"] = value

    assert parse_submission(doc).vitals is not None


@pytest.mark.parametrize("value", ["", "   "])
def test_text__empty_or_blank__is_rejected(value: str) -> None:
    doc = example()
    doc["patient"]["given_name"] = value

    assert_only_error(doc, "patient.given_name", "must not be empty")


def test_text__not_a_string__says_must_be_a_string() -> None:
    doc = example()
    doc["medication_review"]["medications"][0]["dose"] = 100

    assert_only_error(doc, "medication_review.medications[0].dose", "must be a string")


def test_text__any_unicode__is_accepted() -> None:
    doc = example()
    doc["patient"]["given_name"] = "Zoë 李 محمد 🙂"

    assert parse_submission(doc).patient.given_name == "Zoë 李 محمد 🙂"


def test_birth_date__in_the_future__is_rejected_when_today_is_given() -> None:
    doc = example()
    doc["patient"]["birth_date"] = "2026-11-25"

    assert_only_error(
        doc, "patient.birth_date", "is in the future (today is 2026-11-24)", today=TODAY
    )


def test_birth_date__in_the_future__is_not_checked_without_today() -> None:
    doc = example()
    doc["patient"]["birth_date"] = "2099-01-01"

    assert parse_submission(doc).patient.birth_date == date(2099, 1, 1)


def test_birth_date__today__is_accepted() -> None:
    doc = example()
    doc["patient"]["birth_date"] = TODAY.isoformat()

    assert parse_submission(doc, today=TODAY).patient.birth_date == TODAY


@pytest.mark.parametrize("value", ["02/03/1984", "1984-03-02T00:00:00Z", 19840302])
def test_birth_date__not_yyyy_mm_dd__is_rejected(value: object) -> None:
    doc = example()
    doc["patient"]["birth_date"] = value

    assert_only_error(doc, "patient.birth_date", "must be a date YYYY-MM-DD")


def test_sex__outside_the_enum__lists_the_allowed_values() -> None:
    doc = example()
    doc["patient"]["sex"] = "F"

    assert_only_error(doc, "patient.sex", "must be one of: female, male, other, unknown")


@pytest.mark.parametrize("value", ["ana.example.org", "ana@example", "ana maria@example.org"])
def test_email__without_user_at_domain__is_rejected(value: str) -> None:
    doc = example()
    doc["patient"]["email"] = value

    assert_only_error(doc, "patient.email", "must be an email address")


@pytest.mark.parametrize("value", ["us", "USA", "U1"])
def test_country__not_uppercase_alpha_2__is_rejected(value: str) -> None:
    doc = example()
    doc["patient"]["address"]["country"] = value

    assert_only_error(doc, "patient.address.country", "ISO 3166 alpha-2")


def test_npi__failing_the_luhn_check__names_the_npi() -> None:
    doc = example()
    doc["providers"][0]["npi"] = "1234567890"

    assert_only_error(doc, "providers[0].npi", "NPI 1234567890 fails the check digit")


@pytest.mark.parametrize("value", ["123456789", "12345678931", "123456789X"])
def test_npi__not_ten_digits__is_rejected(value: str) -> None:
    doc = example()
    doc["providers"][1]["npi"] = value

    assert_only_error(doc, "providers[1].npi", "NPI must be exactly 10 digits")


@pytest.mark.parametrize("value", ["1234567893", "1987654328"])
def test_npi__of_the_examples__passes_the_check(value: str) -> None:
    doc = example()
    doc["providers"][1]["npi"] = value

    assert parse_submission(doc).providers is not None


def test_acls_certified__as_string__must_be_true_or_false() -> None:
    doc = example()
    doc["providers"][0]["acls_certified"] = "yes"

    assert_only_error(doc, "providers[0].acls_certified", "must be true or false")


@pytest.mark.parametrize("value", ["F33.2", "G90.521", "F32.A", "S72.001A", "C4A.0", "U07.1"])
def test_icd10__billable_code__is_accepted(value: str) -> None:
    doc = example()
    doc["reason"]["icd10"] = value

    assert parse_submission(doc).reason is not None


@pytest.mark.parametrize("value", ["f33.2", "F3", "332", "F33.", "F33-2", "F33.23456"])
def test_icd10__malformed__is_rejected(value: str) -> None:
    doc = example()
    doc["reason"]["icd10"] = value

    assert_only_error(doc, "reason.icd10", "must be an ICD-10 code such as F33.2")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("F33.29", "F33.29 is not an ICD-10-CM code"),
        ("Z99.99", "Z99.99 is not an ICD-10-CM code"),
        ("F33", "F33 is an ICD-10-CM category, not a billable code"),
        ("F43.1", "F43.1 is an ICD-10-CM category, not a billable code"),
    ],
)
def test_icd10__unknown_or_not_billable__is_rejected_naming_the_field(
    value: str, message: str
) -> None:
    doc = example()
    doc["reason"]["icd10"] = value

    assert_only_error(doc, "reason.icd10", message)


def test_rxnorm__not_digits__is_rejected() -> None:
    doc = example()
    doc["medication_review"]["medications"][0]["rxnorm"] = "RX36437"

    assert_only_error(doc, "medication_review.medications[0].rxnorm", "RxNorm code must be")
