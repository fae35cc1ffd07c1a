"""Record ids scoped by their encounter, the older scheme kept for stored records, and the
claims that lead every identifier back to the field of the document it came from."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mappings.claims import claim_of, encounter_claims, record_claims
from mappings.common import identity
from mappings.common.bundle import resource_identity
from mappings.common.identity import PART_SEPARATOR
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission, parse_vitals_submission
from mappings.encounter.submission import map_submission, scope_of, unmap_submission
from mappings.kinds import VITALS
from mappings.vitals.readings import map_vitals
from tests.unit.mappings import strategies as gen
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, load_example

CTX = MappingContext(namespace="https://fhir.test-clinic.example", tenant="clinic-a")
UNCLAIMED = ("Organization", "Device", "Questionnaire")
RECORD_SYSTEMS = (
    "intake",
    "infusion",
    "infusion-adjunct",
    "infusion-adverse-event",
    "vitals",
    "medication-review",
    "medication-statement",
    "allergy",
    "medication-interaction",
)


def _legacy(sub: EncounterSubmission, ctx: MappingContext = CTX) -> MappingContext:
    """`ctx` with every record of `sub` stored under the older scheme."""
    eid = sub.encounter_id
    pins = {(identity.VITALS, eid, v.vitals_id) for v in sub.vitals or ()}
    if sub.intake_screening is not None:
        pins.add((identity.SCREENING, eid, sub.intake_screening.screening_id))
    if sub.infusion is not None:
        pins.add((identity.PROCEDURE, eid, sub.infusion.procedure_id))
    if sub.medication_review is not None:
        pins.add((identity.REVIEW, eid, sub.medication_review.review_id))
    return replace(ctx, legacy_records=frozenset(pins))


def _value_at(document: Any, path: str) -> Any:
    """The value at a claim's path (`vitals[2].vitals_id`) in a dumped document."""
    node = document
    for step in path.replace("[", ".[").split("."):
        node = node[int(step[1:-1])] if step.startswith("[") else node[step]
    return node


def _record_values(resources: list[dict[str, Any]]) -> list[str]:
    systems = {identity.system(CTX, kind) for kind in RECORD_SYSTEMS}
    return [
        ident.value for r in resources if (ident := resource_identity(r, CTX)).system in systems
    ]


def test_record_key__scoped_by_encounter_unless_stored_before() -> None:
    legacy = replace(CTX, legacy_records=frozenset({("vitals_id", "E-1", "VS-1")}))
    assert identity.record_key(CTX, "vitals_id", "E-1", "VS-1") == "E-1~VS-1"
    assert identity.record_key(legacy, "vitals_id", "E-1", "VS-1") == "VS-1"
    assert identity.record_key(legacy, "vitals_id", "E-2", "VS-1") == "E-2~VS-1"
    assert identity.record_key(legacy, "screening_id", "E-1", "VS-1") == "E-1~VS-1"
    assert identity.record_id_of("E-1~VS-1") == identity.record_id_of("VS-1") == "VS-1"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__record_identifiers__start_with_the_encounter_id(name: str) -> None:
    sub = load_example(name)
    values = _record_values(map_submission(sub, CTX))
    assert values
    assert all(v.startswith(sub.encounter_id + PART_SEPARATOR) for v in values)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_map_submission__records_stored_before__keep_identifiers_without_the_encounter(
    name: str,
) -> None:
    sub = load_example(name)
    legacy = _legacy(sub)
    resources = map_submission(sub, legacy)
    values = _record_values(resources)
    assert values
    assert not any(v.startswith(sub.encounter_id + PART_SEPARATOR) for v in values)
    assert unmap_submission(resources, legacy) == sub


def test_two_visits_reusing_record_ids__no_identifier_in_common_but_the_shared_ones() -> None:
    first = load_example("typical-ketamine-infusion")
    second = first.model_copy(update={"encounter_id": "ENC-SECOND"})
    ids = [{r["id"] for r in map_submission(s, CTX)} for s in (first, second)]
    shared = {r["id"] for r in map_submission(first, CTX)[:3]}  # clinic, device, patient
    staff = {
        r["id"] for r in map_submission(first, CTX) if "Practitioner" in str(r["resourceType"])
    }
    assert ids[0] & ids[1] == shared | staff


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen.encounter_submissions())
def test_claims__every_identifier_but_clinic_and_device__leads_to_its_field(
    sub: EncounterSubmission,
) -> None:
    claims = encounter_claims(sub, CTX)
    dumped = sub.model_dump(mode="json")
    for resource in map_submission(sub, CTX):
        ident = resource_identity(resource, CTX)
        claim = claim_of(ident, claims, CTX)
        if ident.resource_type in UNCLAIMED:
            assert claim is None
            continue
        assert claim is not None, ident
        assert _value_at(dumped, claim.path) == claim.clinic_id
        covering = [c for c in claims if c.covers(ident, CTX)]
        assert covering == [claim], ident


def test_claims__per_record_vitals__its_three_ids() -> None:
    reading = load_example("typical-ketamine-infusion").vitals
    assert reading is not None
    document = {
        **reading[0].model_dump(mode="json", exclude_none=True),
        "encounter_id": "E-1",
        "patient_mrn": "M-1",
    }
    sub = parse_vitals_submission(document)
    claims = record_claims(VITALS.parse(document), CTX)
    assert [(c.path, c.clinic_id) for c in claims] == [
        ("encounter_id", "E-1"),
        ("patient_mrn", "M-1"),
        ("vitals_id", sub.vitals_id),
    ]
    scope = scope_of(load_example("typical-ketamine-infusion"))
    scope = replace(scope, encounter_id="E-1", patient_mrn="M-1")
    for resource in map_vitals([sub], scope, CTX):
        claim = claim_of(resource_identity(resource, CTX), claims, CTX)
        assert claim is not None
        assert claim.path == "vitals_id"
