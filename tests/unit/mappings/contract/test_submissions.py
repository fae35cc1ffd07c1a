"""Per-record submissions: one record plus encounter_id and patient_mrn."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mappings.contract import (
    InfusionProcedureSubmission,
    IntakeScreeningSubmission,
    MedicationReviewSubmission,
    VitalsObservationSubmission,
    parse_infusion_submission,
    parse_intake_submission,
    parse_medication_review_submission,
    parse_vitals_submission,
)
from tests.unit.mappings.contract.support import assert_only_error, example

KEYS = {"encounter_id": "ENC-2026-1120-001", "patient_mrn": "MRN-004211"}


def _alone(record: str, index: int | None = None) -> dict[str, Any]:
    body = example()[record]
    if index is not None:
        body = body[index]
    return {**body, **KEYS}


RECORDS: list[tuple[Callable[..., Any], type[Any], str, int | None]] = [
    (parse_intake_submission, IntakeScreeningSubmission, "intake_screening", None),
    (parse_infusion_submission, InfusionProcedureSubmission, "infusion", None),
    (parse_vitals_submission, VitalsObservationSubmission, "vitals", 0),
    (parse_medication_review_submission, MedicationReviewSubmission, "medication_review", None),
]


@pytest.mark.parametrize(("parse", "model", "record", "index"), RECORDS)
def test_record_submission__from_the_example__is_accepted(
    parse: Callable[..., Any], model: type[Any], record: str, index: int | None
) -> None:
    submission: Any = parse(json.dumps(_alone(record, index)).encode())

    assert isinstance(submission, model)
    assert submission.encounter_id == "ENC-2026-1120-001"
    assert submission.patient_mrn == "MRN-004211"


@pytest.mark.parametrize(("parse", "model", "record", "index"), RECORDS)
@pytest.mark.parametrize("key", ["encounter_id", "patient_mrn"])
def test_record_submission__without_encounter_or_patient__names_the_key(
    parse: Callable[..., Any], model: type[Any], record: str, index: int | None, key: str
) -> None:
    doc = _alone(record, index)
    del doc[key]

    assert_only_error(doc, key, "required field is missing", parse=parse)


@pytest.mark.parametrize(("parse", "model", "record", "index"), RECORDS)
def test_record_submission__applies_the_record_rules_at_top_level_paths(
    parse: Callable[..., Any], model: type[Any], record: str, index: int | None
) -> None:
    doc = _alone(record, index)
    doc["surprise"] = 1

    assert_only_error(doc, "surprise", "unknown field (not in contract v1)", parse=parse)


def test_vitals_submission__systolic_not_above_diastolic__names_systolic() -> None:
    doc = _alone("vitals", 1)
    doc["diastolic"]["value"] = 150

    assert_only_error(
        doc, "systolic", "systolic 146 mmHg must be greater", parse=parse_vitals_submission
    )


def test_infusion_submission__provider_references__accepted_when_no_known_ids_are_given() -> None:
    doc = _alone("infusion")
    doc["administered_by"] = "PRV-99"

    assert parse_infusion_submission(doc).administered_by == "PRV-99"


def test_infusion_submission__reference_not_among_known_ids__names_the_field() -> None:
    doc = _alone("infusion")
    doc["monitored_by"] = "PRV-99"

    assert_only_error(
        doc,
        "monitored_by",
        "names provider PRV-99, which is not in the clinic's known providers",
        parse=parse_infusion_submission,
        known_provider_ids=["PRV-07", "PRV-12"],
    )


def test_infusion_submission__references_among_known_ids__are_accepted() -> None:
    infusion = parse_infusion_submission(
        _alone("infusion"), known_provider_ids={"PRV-07", "PRV-12"}
    )

    assert infusion.monitored_by == "PRV-12"


def test_medication_review_submission__reviewer_not_among_known_ids__names_reviewed_by() -> None:
    assert_only_error(
        _alone("medication_review"),
        "reviewed_by",
        "names provider PRV-07",
        parse=parse_medication_review_submission,
        known_provider_ids=[],
    )


def test_infusion_submission__dose_rule_applies() -> None:
    doc = _alone("infusion")
    doc["total_dose_mg"] = 68

    assert_only_error(doc, "total_dose_mg", "does not agree", parse=parse_infusion_submission)


def test_record_submission__not_json_object__names_root() -> None:
    assert_only_error("[]", "$", "must be a JSON object", parse=parse_intake_submission)
