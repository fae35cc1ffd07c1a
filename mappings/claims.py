"""Which field of a document each identifier comes from: the ids a document claims.

An adapter that keeps the contract's identity rules (an encounter keeps its patient, an id
belongs to one tenant) must say which field broke a rule and which id the caller sent, not
which FHIR identifier clashed. A `Claim` is one clinic id of the document with its field
path, and the identifier kinds and value prefix (the id itself, or a record's key) under
which every resource it produces is named, so an identifier leads back to its field.

    patient.mrn / patient_mrn          mrn
    encounter_id                       encounter, indication, submission (the Provenances),
                                       discharge, rems-monitoring
    consent.consent_id                 consent                    (value: <encounter_id>~<id>)
    course.course_id                   treatment-course           (value: <mrn>~<id>)
    providers[i].provider_id           provider, provider-role
    intake_screening.screening_id      intake                     (value: the record key)
    infusion.procedure_id              infusion, infusion-adjunct, infusion-adverse-event,
                                       drug-product
    vitals[i].vitals_id                vitals
    medication_review.review_id        medication-review, medication-statement, allergy,
                                       medication-interaction

The clinic's Organization and the adapter's Device are named by the tenant and the adapter,
never by a clinic id: no claim covers them; nor our REMS Questionnaire (named by the tenant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mappings.common import identity
from mappings.common.identity import PART_SEPARATOR, Identity
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.kinds import Record, kind_by_id_field

PATIENT_KINDS = ("mrn",)
ENCOUNTER_KINDS = ("encounter", "indication", "submission", "discharge", "rems-monitoring")
PROVIDER_KINDS = ("provider", "provider-role")


@dataclass(frozen=True)
class Claim:
    """One clinic id of a document: where it is, what it is, and what it names."""

    path: str
    """The field's path in the document (`vitals[2].vitals_id`)."""
    clinic_id: str
    """The id as the caller sent it."""
    kinds: tuple[str, ...]
    key: str
    """The value, or value prefix (`<key>~...`), of the identifiers the id produces."""

    def covers(self, ident: Identity, ctx: MappingContext) -> bool:
        """Whether `ident` is one of the identifiers this id produces."""
        if not any(ident.system == identity.system(ctx, kind) for kind in self.kinds):
            return False
        return ident.value == self.key or ident.value.startswith(self.key + PART_SEPARATOR)


def encounter_claims(sub: EncounterSubmission, ctx: MappingContext) -> list[Claim]:
    """Every clinic id of an encounter document, in document order."""
    eid = sub.encounter_id
    found = [
        Claim("encounter_id", eid, ENCOUNTER_KINDS, eid),
        Claim("patient.mrn", sub.patient.mrn, PATIENT_KINDS, sub.patient.mrn),
    ]
    for index, provider in enumerate(sub.providers or ()):
        pid = provider.provider_id
        found.append(Claim(f"providers[{index}].provider_id", pid, PROVIDER_KINDS, pid))
    if sub.intake_screening is not None:
        rid = sub.intake_screening.screening_id
        found.append(_record(ctx, eid, identity.SCREENING, "intake_screening.screening_id", rid))
    if sub.infusion is not None:
        rid = sub.infusion.procedure_id
        found.append(_record(ctx, eid, identity.PROCEDURE, "infusion.procedure_id", rid))
    for index, reading in enumerate(sub.vitals or ()):
        path = f"vitals[{index}].vitals_id"
        found.append(_record(ctx, eid, identity.VITALS, path, reading.vitals_id))
    if sub.medication_review is not None:
        rid = sub.medication_review.review_id
        found.append(_record(ctx, eid, identity.REVIEW, "medication_review.review_id", rid))
    if sub.consent is not None:
        cid = sub.consent.consent_id
        found.append(Claim("consent.consent_id", cid, ("consent",), eid + PART_SEPARATOR + cid))
    if sub.course is not None:
        key = sub.patient.mrn + PART_SEPARATOR + sub.course.course_id
        found.append(Claim("course.course_id", sub.course.course_id, ("treatment-course",), key))
    return found


def record_claims(record: Record, ctx: MappingContext) -> list[Claim]:
    """Every clinic id of a per-record document (its providers are claimed elsewhere)."""
    eid, mrn = record.encounter_id, record.patient_mrn
    field = record.kind.id_field
    return [
        Claim("encounter_id", eid, ENCOUNTER_KINDS, eid),
        Claim("patient_mrn", mrn, PATIENT_KINDS, mrn),
        _record(ctx, eid, field, field, record.record_id),
    ]


def claim_of(ident: Identity, claims: Sequence[Claim], ctx: MappingContext) -> Claim | None:
    """The claim whose id produced `ident`, if any."""
    return next((claim for claim in claims if claim.covers(ident, ctx)), None)


def _record(ctx: MappingContext, encounter_id: str, field: str, path: str, rid: str) -> Claim:
    key = identity.record_key(ctx, field, encounter_id, rid)
    return Claim(path, rid, kind_by_id_field(field).identifier_kinds, key)
