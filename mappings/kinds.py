"""The record kinds a clinic sends alone, each named once with everything that differs.

A record kind (`intake-screening`, `infusion`, `vitals`, `medication-review`) is one record
of an encounter sent on its own, with its `encounter_id` and `patient_mrn`. What the
adapter does with one is the same for every kind (parse, map, add a Provenance, accept);
what differs is here, so the ingest path and the API look a kind up by name instead of
asking a record its type:

    name              the kind in the clinic API, submission scopes, receipts and logs
    collection        its path segment under `/clinic/` (`intake-screenings`)
    model             the contract model of the record sent alone
    read              raw JSON to a `Record`: parsed (`ContractViolation` naming every bad
                      field), with its id, times, author and mapper bound to it
    unmap             the reverse mapper: the kind's records among an encounter's resources
    id_field          the record's id field, as the contract and `identity.record_key` name it
    identifier_kinds  the identifier kinds of every resource the record produces

To add a kind: its contract model and parser (`mappings.contract`), its package of
mappers beside `intake/`, a `_read_<kind>` below and one `RecordKind` in `RECORD_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from mappings.common import identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import (
    InfusionProcedure,
    InfusionProcedureSubmission,
    IntakeScreeningSubmission,
    MedicationReviewSubmission,
    VitalsObservationSubmission,
    parse_infusion_submission,
    parse_intake_submission,
    parse_medication_review_submission,
    parse_vitals_submission,
)
from mappings.contract.parse import JsonInput
from mappings.infusion import map_infusion, unmap_infusion
from mappings.infusion.common import ADJUNCT_KIND, ADVERSE_EVENT_KIND
from mappings.infusion.product import KIND as PRODUCT_KIND
from mappings.infusion.protocol_issues import KIND as PROTOCOL_ISSUE_KIND
from mappings.intake import map_intake, unmap_intake
from mappings.intake.base import KIND as INTAKE_KIND
from mappings.jsontypes import Resource
from mappings.medication_review import map_medication_review, refs, unmap_medication_review
from mappings.vitals import map_vitals, unmap_vitals
from mappings.vitals.alerts import KIND as VITALS_ALERT_KIND
from mappings.vitals.measures import KIND as VITALS_KIND

RecordSubmission = (
    IntakeScreeningSubmission
    | InfusionProcedureSubmission
    | VitalsObservationSubmission
    | MedicationReviewSubmission
)
Mapper = Callable[[EncounterScope, MappingContext], list[Resource]]


@dataclass(frozen=True)
class Record:
    """One record sent alone and parsed, with what the adapter reads of it, whatever its kind."""

    kind: RecordKind
    submission: RecordSubmission
    record_id: str
    """The record's own id (`screening_id`, `procedure_id`, ...)."""
    times: tuple[datetime, ...]
    """Every time the record carries, for its Provenance's `recorded`."""
    author: str | None
    """The provider who authored the record, when the record names one."""
    infusion: InfusionProcedure | None
    """The record itself when it is an infusion, which its own scope then refers to."""
    mapper: Mapper
    """The kind's mapper, bound to this record."""

    @property
    def encounter_id(self) -> str:
        return self.submission.encounter_id

    @property
    def patient_mrn(self) -> str:
        return self.submission.patient_mrn

    def map(self, scope: EncounterScope, ctx: MappingContext) -> list[Resource]:
        """The record's FHIR resources (without a Provenance)."""
        return self.mapper(scope, ctx)


@dataclass(frozen=True)
class RecordKind:
    """One record kind: its names, its contract model, how to read and map it, and back."""

    name: str
    collection: str
    model: type[RecordSubmission]
    read: Callable[[JsonInput, Collection[str] | None], Record]
    unmap: Callable[[Sequence[Resource], EncounterScope, MappingContext], object]
    """The kind's records among an encounter's resources: one record or None (for vitals,
    the list of reading sets)."""
    id_field: str
    identifier_kinds: tuple[str, ...]

    def parse(
        self, data: JsonInput, *, known_provider_ids: Collection[str] | None = None
    ) -> Record:
        """The record `data` holds; `ContractViolation` naming every bad field."""
        return self.read(data, known_provider_ids)


def _read_intake(data: JsonInput, known: Collection[str] | None) -> Record:
    sub = parse_intake_submission(data, known_provider_ids=known)
    return Record(
        INTAKE_SCREENING,
        sub,
        sub.screening_id,
        (sub.completed_at,),
        author=None,
        infusion=None,
        mapper=partial(map_intake, sub),
    )


def _read_infusion(data: JsonInput, known: Collection[str] | None) -> Record:
    sub = parse_infusion_submission(data, known_provider_ids=known)
    times = tuple(t for t in (sub.start, sub.end, sub.recovery_end) if t is not None)
    return Record(
        INFUSION,
        sub,
        sub.procedure_id,
        times,
        author=sub.administered_by,
        infusion=sub,
        mapper=partial(map_infusion, sub),
    )


def _read_vitals(data: JsonInput, known: Collection[str] | None) -> Record:
    sub = parse_vitals_submission(data, known_provider_ids=known)
    return Record(
        VITALS,
        sub,
        sub.vitals_id,
        (sub.taken_at,),
        author=None,
        infusion=None,
        mapper=partial(map_vitals, [sub]),
    )


def _read_medication_review(data: JsonInput, known: Collection[str] | None) -> Record:
    sub = parse_medication_review_submission(data, known_provider_ids=known)
    return Record(
        MEDICATION_REVIEW,
        sub,
        sub.review_id,
        (sub.reviewed_at,),
        author=sub.reviewed_by,
        infusion=None,
        mapper=partial(map_medication_review, sub),
    )


INTAKE_SCREENING = RecordKind(
    name="intake-screening",
    collection="intake-screenings",
    model=IntakeScreeningSubmission,
    read=_read_intake,
    unmap=unmap_intake,
    id_field=identity.SCREENING,
    identifier_kinds=(INTAKE_KIND,),
)
INFUSION = RecordKind(
    name="infusion",
    collection="infusions",
    model=InfusionProcedureSubmission,
    read=_read_infusion,
    unmap=unmap_infusion,
    id_field=identity.PROCEDURE,
    identifier_kinds=(
        "infusion",
        ADJUNCT_KIND,
        ADVERSE_EVENT_KIND,
        PROTOCOL_ISSUE_KIND,
        PRODUCT_KIND,
    ),
)
VITALS = RecordKind(
    name="vitals",
    collection="vitals",
    model=VitalsObservationSubmission,
    read=_read_vitals,
    unmap=unmap_vitals,
    id_field=identity.VITALS,
    identifier_kinds=(VITALS_KIND, VITALS_ALERT_KIND),
)
MEDICATION_REVIEW = RecordKind(
    name="medication-review",
    collection="medication-reviews",
    model=MedicationReviewSubmission,
    read=_read_medication_review,
    unmap=unmap_medication_review,
    id_field=identity.REVIEW,
    identifier_kinds=(
        refs.REVIEW_KIND,
        refs.STATEMENT_KIND,
        refs.ALLERGY_KIND,
        refs.INTERACTION_KIND,
    ),
)

RECORD_KINDS: Mapping[str, RecordKind] = {
    kind.name: kind for kind in (INTAKE_SCREENING, INFUSION, VITALS, MEDICATION_REVIEW)
}
"""Every record kind by name, in the order the clinic contract lists them."""

_BY_FIELD: Mapping[str, RecordKind] = {kind.id_field: kind for kind in RECORD_KINDS.values()}


def record_kind(name: str) -> RecordKind:
    """The kind called `name` (KeyError if there is none)."""
    return RECORD_KINDS[name]


def kind_by_id_field(id_field: str) -> RecordKind:
    """The kind whose records are named by `id_field` (`identity.SCREENING`, ...)."""
    return _BY_FIELD[id_field]
