"""Property tests: every generated document is valid, and a model dumps back to itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.contract import (
    EncounterSubmission,
    parse_infusion_submission,
    parse_submission,
    parse_vitals_submission,
)
from tests.unit.mappings import strategies as gen
from tests.unit.mappings.contract.support import TODAY

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(gen.encounter_documents())
def test_generated_encounter__is_accepted_and_round_trips(document: dict[str, Any]) -> None:
    submission = parse_submission(json.dumps(document, ensure_ascii=False).encode(), today=TODAY)

    dumped = submission.model_dump(mode="json", exclude_none=True)

    assert parse_submission(json.dumps(dumped), today=TODAY) == submission
    assert parse_submission(dumped) == submission


@FAST
@given(gen.encounter_submissions())
def test_generated_submission_model__dumps_to_json_that_parses_to_an_equal_model(
    submission: EncounterSubmission,
) -> None:
    assert parse_submission(submission.model_dump_json(exclude_none=True)) == submission


@FAST
@given(gen.providers(), gen.patients(), gen.intake_screenings(), gen.vitals_observations(),
       gen.medication_reviews())  # fmt: skip
def test_generated_records__round_trip_through_json(
    provider: Any, patient: Any, screening: Any, vitals: Any, review: Any
) -> None:
    for record in (provider, patient, screening, vitals, review):
        assert type(record).model_validate_json(record.model_dump_json()) == record


@FAST
@given(st.lists(gen.provider_documents(), min_size=1, max_size=3).flatmap(
    lambda staff: st.tuples(st.just([p["provider_id"] for p in staff]),
                            gen.infusion_documents(staff))))  # fmt: skip
def test_generated_infusion__names_only_the_given_providers(
    drawn: tuple[list[str], dict[str, Any]],
) -> None:
    known, infusion = drawn
    document = {**infusion, "encounter_id": "E-1", "patient_mrn": "M-1"}

    parsed = parse_infusion_submission(document, known_provider_ids=known)

    assert {parsed.administered_by, parsed.monitored_by} <= {*known, None}


@FAST
@given(gen.vitals_documents())
def test_generated_vitals__are_accepted_as_a_per_record_submission(vitals: dict[str, Any]) -> None:
    parsed = parse_vitals_submission({**vitals, "encounter_id": "E-1", "patient_mrn": "M-1"})

    assert parsed.vitals_id == vitals["vitals_id"]
