"""Cross-field rules: vitals, infusion, indication, adverse events, encounter."""

from __future__ import annotations

import pytest

from mappings.contract import parse_submission
from tests.unit.mappings.contract.support import (
    assert_has_error,
    assert_only_error,
    errors_of,
    example,
)


def test_vitals__systolic_not_above_diastolic__names_vitals_1_systolic() -> None:
    doc = example()
    doc["vitals"][1]["systolic"] = {"value": 80, "unit": "mmHg"}
    doc["vitals"][1]["diastolic"] = {"value": 90, "unit": "mmHg"}

    assert_only_error(
        doc, "vitals[1].systolic", "systolic 80 mmHg must be greater than diastolic 90 mmHg"
    )


def test_vitals__systolic_equal_to_diastolic__is_rejected() -> None:
    doc = example()
    doc["vitals"][1]["diastolic"] = {"value": 146, "unit": "mmHg"}

    assert_only_error(doc, "vitals[1].systolic", "must be greater than diastolic 146 mmHg")


def test_vitals__systolic_without_diastolic__names_diastolic() -> None:
    doc = example()
    del doc["vitals"][2]["diastolic"]

    assert_only_error(
        doc, "vitals[2].diastolic", "required when systolic is given (both or neither)"
    )


def test_vitals__diastolic_without_systolic__names_systolic() -> None:
    doc = example()
    del doc["vitals"][2]["systolic"]

    assert_only_error(doc, "vitals[2].systolic", "required when diastolic is given")


def test_vitals__no_measurement_at_all__names_the_vitals_set() -> None:
    doc = example()
    doc["vitals"][3] = {
        "vitals_id": "VS-4",
        "taken_at": "2026-11-20T10:18:00-05:00",
        "phase": "discharge",
    }

    assert_only_error(doc, "vitals[3]", "at least one measurement is required")


def test_vitals__a_single_measurement__is_enough() -> None:
    doc = example()
    doc["vitals"][3] = {
        "vitals_id": "VS-4",
        "taken_at": "2026-11-20T10:18:00-05:00",
        "phase": "discharge",
        "spo2": {"value": 99, "unit": "%"},
    }

    assert parse_submission(doc).vitals is not None


def test_vitals__duplicate_vitals_id__names_the_second() -> None:
    doc = example()
    doc["vitals"][2]["vitals_id"] = "VS-1"

    assert_only_error(doc, "vitals[2].vitals_id", "duplicate vitals_id VS-1 (also vitals[0])")


@pytest.mark.parametrize("status", ["stopped", "not_done"])
def test_infusion__stopped_or_not_done_without_reason__requires_status_reason(status: str) -> None:
    doc = example()
    doc["infusion"]["status"] = status

    assert_only_error(doc, "infusion.status_reason", f"required when status is {status}")


def test_infusion__stopped_example_with_reason__is_accepted() -> None:
    infusion = parse_submission(example("stopped-infusion")).infusion

    assert infusion is not None
    assert infusion.status_reason is not None


@pytest.mark.parametrize("field", ["start", "end"])
def test_infusion__completed_without_start_or_end__requires_it(field: str) -> None:
    doc = example()
    del doc["infusion"][field]
    del doc["infusion"]["recovery_end"]

    assert_only_error(doc, f"infusion.{field}", "required unless status is not_done")


def test_infusion__not_done_without_times__is_accepted() -> None:
    doc = example()
    infusion = doc["infusion"]
    infusion.update(status="not_done", status_reason="blood pressure 190/115 at baseline")
    for field in ("start", "end", "recovery_end", "adverse_events", "adjunct_medications"):
        del infusion[field]

    parsed = parse_submission(doc).infusion
    assert parsed is not None
    assert parsed.start is None


def test_infusion__end_before_start__names_infusion_end() -> None:
    doc = example()
    doc["infusion"]["end"] = "2026-11-20T09:05:00-05:00"

    assert_only_error(doc, "infusion.end", "is before start 2026-11-20T09:10:00-05:00")


def test_infusion__end_equal_to_start_in_another_offset__is_accepted() -> None:
    doc = example()
    doc["infusion"]["end"] = "2026-11-20T14:10:00Z"

    assert parse_submission(doc).infusion is not None


def test_infusion__recovery_end_before_end__names_recovery_end() -> None:
    doc = example()
    doc["infusion"]["recovery_end"] = "2026-11-20T14:51:00Z"

    assert_only_error(
        doc, "infusion.recovery_end", "recovery_end 2026-11-20T14:51:00+00:00 is before end"
    )


@pytest.mark.parametrize("route", ["intravenous", "intramuscular"])
@pytest.mark.parametrize("field", ["weight", "dose_mg_per_kg"])
def test_infusion__weight_based_route_without_weight_or_dose__requires_it(
    route: str, field: str
) -> None:
    doc = example()
    doc["infusion"]["route"] = route
    del doc["infusion"][field]

    assert_only_error(doc, f"infusion.{field}", f"required when route is {route}")


def test_infusion__total_dose_not_dose_times_weight__shows_the_arithmetic() -> None:
    doc = example()
    doc["infusion"]["total_dose_mg"] = 50

    assert_only_error(
        doc,
        "infusion.total_dose_mg",
        "total_dose_mg 50 does not agree with dose_mg_per_kg 0.5 × weight 68 kg = 34 mg"
        " (5% tolerance)",
    )


@pytest.mark.parametrize("total", [32.3, 35.7, 34])
def test_infusion__total_dose_within_5_percent__is_accepted(total: float) -> None:
    doc = example()
    doc["infusion"]["total_dose_mg"] = total

    assert parse_submission(doc).infusion is not None


@pytest.mark.parametrize("total", [32.2, 35.8])
def test_infusion__total_dose_just_beyond_5_percent__is_rejected(total: float) -> None:
    doc = example()
    doc["infusion"]["total_dose_mg"] = total

    assert_only_error(doc, "infusion.total_dose_mg", "does not agree")


def test_infusion__weight_in_pounds__is_converted_before_the_dose_check() -> None:
    doc = example()
    doc["infusion"]["weight"] = {"value": 150, "unit": "lb"}
    doc["infusion"]["total_dose_mg"] = 34.02

    assert parse_submission(doc).infusion is not None
    doc["infusion"]["total_dose_mg"] = 75
    assert_only_error(doc, "infusion.total_dose_mg", "× weight 150 lb (68.04 kg) = 34.02 mg")


def test_infusion__intranasal__needs_no_weight_and_skips_the_dose_check() -> None:
    infusion = parse_submission(example("esketamine-session")).infusion

    assert infusion is not None
    assert infusion.weight is None


@pytest.mark.parametrize("route", ["intravenous", "intramuscular"])
def test_infusion__esketamine_not_intranasal__names_route(route: str) -> None:
    doc = example("esketamine-session")
    doc["infusion"].update(route=route, weight={"value": 70, "unit": "kg"}, dose_mg_per_kg=0.8)

    assert_only_error(doc, "infusion.route", "esketamine is given intranasally")


def test_infusion__ketamine_intranasal__is_accepted() -> None:
    doc = example()
    doc["infusion"]["route"] = "intranasal"

    assert parse_submission(doc).infusion is not None


def test_infusion__administered_by_unknown_provider__names_the_field() -> None:
    doc = example()
    doc["infusion"]["administered_by"] = "PRV-99"

    assert_only_error(
        doc,
        "infusion.administered_by",
        "names provider PRV-99, which is not in this encounter's providers",
    )


def test_infusion__monitored_by_with_no_providers_in_encounter__is_rejected() -> None:
    doc = example("esketamine-session")
    del doc["providers"]

    errors = errors_of(doc)

    assert_has_error(errors, "infusion.administered_by", "names provider PRV-03")
    assert_has_error(errors, "infusion.monitored_by", "names provider PRV-03")
    assert len(errors) == 2


def test_medication_review__reviewed_by_unknown_provider__names_the_field() -> None:
    doc = example()
    doc["medication_review"]["reviewed_by"] = "PRV-13"

    assert_only_error(doc, "medication_review.reviewed_by", "names provider PRV-13")


def test_provider_reference__checked_even_when_another_record_is_malformed() -> None:
    doc = example()
    doc["infusion"]["monitored_by"] = "PRV-99"
    doc["vitals"][0]["spo2"]["unit"] = "percent"

    errors = errors_of(doc)

    assert_has_error(errors, "infusion.monitored_by", "names provider PRV-99")
    assert_has_error(errors, "vitals[0].spo2.unit", "must be one of: %")
    assert len(errors) == 2


def test_providers__duplicate_provider_id__names_the_second() -> None:
    doc = example()
    doc["providers"][1]["provider_id"] = "PRV-07"
    doc["infusion"]["monitored_by"] = "PRV-07"

    assert_only_error(
        doc, "providers[1].provider_id", "duplicate provider_id PRV-07 (also providers[0])"
    )


def test_encounter__end_before_start__names_end() -> None:
    doc = example()
    doc["end"] = "2026-11-20T08:59:59-05:00"

    assert_only_error(doc, "end", "is before start")


def test_encounter__status_outside_the_enum__lists_the_choices() -> None:
    doc = example()
    doc["status"] = "done"

    assert_only_error(doc, "status", "must be one of: planned, in-progress, finished, cancelled")


def test_indication__other_without_text__requires_reason_text() -> None:
    doc = example()
    doc["reason"] = {"code": "other"}

    assert_only_error(doc, "reason.text", "required when code is other")


def test_indication__other_with_text__is_accepted() -> None:
    doc = example()
    doc["reason"] = {"code": "other", "text": "obsessive-compulsive disorder"}

    reason = parse_submission(doc).reason
    assert reason is not None
    assert reason.text == "obsessive-compulsive disorder"


def test_adverse_event__other_without_text__requires_text() -> None:
    doc = example()
    doc["infusion"]["adverse_events"][1] = {"type": "other", "severity": "mild"}

    assert_only_error(doc, "infusion.adverse_events[1].text", "required when type is other")


def test_adverse_event__severity_outside_the_enum__is_rejected() -> None:
    doc = example()
    doc["infusion"]["adverse_events"][0]["severity"] = "grade 2"

    assert_only_error(
        doc, "infusion.adverse_events[0].severity", "must be one of: mild, moderate, severe"
    )


def test_provider_reference__not_checked_when_a_provider_has_no_readable_id() -> None:
    doc = example()
    del doc["providers"][1]["provider_id"]

    assert_only_error(doc, "providers[1].provider_id", "required field is missing")
