"""The registry of record kinds: each kind reads its record, maps and reverses it as its
own mappers do, and names the fields the adapter reads of it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import scope_of
from mappings.errors import ContractViolation
from mappings.infusion import map_infusion
from mappings.intake import map_intake
from mappings.jsontypes import JsonObject, Resource
from mappings.kinds import RECORD_KINDS, kind_by_id_field, record_kind
from mappings.medication_review import map_medication_review
from mappings.vitals import map_vitals
from tests.unit.mappings.fhircheck import load_example

CTX = MappingContext()
EXAMPLE = "typical-ketamine-infusion"


def _record_document(sub: EncounterSubmission, kind: str) -> JsonObject:
    records = {
        "intake-screening": sub.intake_screening,
        "infusion": sub.infusion,
        "vitals": sub.vitals[0] if sub.vitals else None,
        "medication-review": sub.medication_review,
    }
    record = records[kind]
    assert record is not None, kind
    return {
        **record.model_dump(mode="json", exclude_none=True),
        "encounter_id": sub.encounter_id,
        "patient_mrn": sub.patient.mrn,
    }


def test_record_kinds__names_and_collections_in_contract_order() -> None:
    assert [(k.name, k.collection) for k in RECORD_KINDS.values()] == [
        ("intake-screening", "intake-screenings"),
        ("infusion", "infusions"),
        ("vitals", "vitals"),
        ("medication-review", "medication-reviews"),
    ]


@pytest.mark.parametrize("name", list(RECORD_KINDS))
def test_parse__record_id_is_the_kinds_id_field(name: str) -> None:
    sub = load_example(EXAMPLE)
    kind = record_kind(name)
    record = kind.parse(_record_document(sub, name))
    assert type(record.submission) is kind.model
    assert record.kind is kind
    assert record.record_id == getattr(record.submission, kind.id_field)
    assert (record.encounter_id, record.patient_mrn) == (sub.encounter_id, sub.patient.mrn)
    assert kind_by_id_field(kind.id_field) is kind


@pytest.mark.parametrize("name", list(RECORD_KINDS))
def test_parse__an_unknown_provider_is_refused_when_the_known_ones_are_given(name: str) -> None:
    sub = load_example(EXAMPLE)
    document = _record_document(sub, name)
    record_kind(name).parse(document)  # no known providers given: accepted as sent
    authored = {"infusion": "administered_by", "medication-review": "reviewed_by"}
    if name not in authored:
        return
    with pytest.raises(ContractViolation) as raised:
        record_kind(name).parse(document, known_provider_ids=["nobody"])
    assert authored[name] in {error.path for error in raised.value.errors}


def test_parse__author_times_and_infusion_as_each_record_says() -> None:
    sub = load_example(EXAMPLE)
    assert sub.infusion is not None
    assert sub.medication_review is not None
    assert sub.intake_screening is not None
    assert sub.vitals
    read = {name: record_kind(name).parse(_record_document(sub, name)) for name in RECORD_KINDS}
    infusion, review = read["infusion"], read["medication-review"]
    assert infusion.author == sub.infusion.administered_by
    assert infusion.infusion is infusion.submission
    assert review.author == sub.medication_review.reviewed_by
    assert read["intake-screening"].author is None
    assert read["vitals"].author is None
    assert [read[n].infusion for n in ("intake-screening", "vitals", "medication-review")] == [
        None,
        None,
        None,
    ]
    assert read["intake-screening"].times == (sub.intake_screening.completed_at,)
    assert read["vitals"].times == (sub.vitals[0].taken_at,)
    assert review.times == (sub.medication_review.reviewed_at,)
    expected = tuple(
        t for t in (sub.infusion.start, sub.infusion.end, sub.infusion.recovery_end) if t
    )
    assert infusion.times == expected


def _mapped_directly(sub: EncounterSubmission, name: str, scope: EncounterScope) -> list[Resource]:
    if name == "intake-screening":
        assert sub.intake_screening is not None
        return map_intake(sub.intake_screening, scope, CTX)
    if name == "infusion":
        assert sub.infusion is not None
        return map_infusion(sub.infusion, scope, CTX)
    if name == "vitals":
        return map_vitals((sub.vitals or [])[:1], scope, CTX)
    assert sub.medication_review is not None
    return map_medication_review(sub.medication_review, scope, CTX)


@pytest.mark.parametrize("name", list(RECORD_KINDS))
def test_map__is_the_kinds_own_mapper_and_unmap_reads_it_back(name: str) -> None:
    sub = load_example(EXAMPLE)
    scope = scope_of(sub)
    kind = record_kind(name)
    record = kind.parse(_record_document(sub, name))
    mapped = record.map(scope, CTX)
    assert mapped == _mapped_directly(sub, name, scope)
    back = kind.unmap(mapped, scope, CTX)
    expected = _record_document(sub, name)
    del expected["encounter_id"], expected["patient_mrn"]
    got = back[0] if isinstance(back, list) else back
    assert isinstance(got, BaseModel)
    assert got.model_dump(mode="json", exclude_none=True) == expected
