"""The review's allergies as AllergyIntolerance resources, and back.

Three cases the contract tells apart, and so must FHIR: `allergies` absent (not
asked: no resource at all), empty (asked, none: one "no known allergy" resource,
SNOMED 716186003, verified by the reviewer) and listed (one resource per allergy,
`unconfirmed` because a history reported at the review is not a tested allergy).
R4 requires `reaction.manifestation` whenever a reaction is given; a severity sent
without a reaction gets a manifestation marked data-absent `unknown`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.identity import Identity
from mappings.common.lookup import by_position, obj, str_field
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import AllergyRecord, MedicationReview
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.medication_review import refs
from mappings.medication_review.codes import drug_concept, is_coded, sent_rxnorm

TABLE = "medication_review"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
NO_KNOWN_ALLERGIES_TEXT = "No known allergies"


def map_allergies(
    record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    if record.allergies is None:
        return []
    if not record.allergies:
        return [_no_known_allergy(record, scope, ctx)]
    return [
        _allergy(allergy, position, record, scope, ctx)
        for position, allergy in enumerate(record.allergies, start=1)
    ]


def _allergy(
    allergy: AllergyRecord,
    position: int,
    record: MedicationReview,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    ident = refs.allergy(ctx, refs.review_key(record, scope, ctx), str(position))
    out = _head(ident, "allergy-verification-unconfirmed", ctx)
    code = drug_concept(allergy.substance, allergy.rxnorm, ctx)
    if is_coded(code):
        out["category"] = ["medication"]
    out["code"] = code
    _add_context(out, record, scope, ctx)
    if allergy.reaction is not None or allergy.severity is not None:
        out["reaction"] = [_reaction(allergy)]
    return out


def _no_known_allergy(
    record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> Resource:
    ident = refs.allergy(ctx, refs.review_key(record, scope, ctx), refs.NO_KNOWN_ALLERGY)
    out = _head(ident, "allergy-verification-confirmed", ctx)
    out["code"] = term(TABLE, "no-known-allergy", ctx, NO_KNOWN_ALLERGIES_TEXT)
    _add_context(out, record, scope, ctx)
    return out


def _head(ident: Identity, verification_key: str, ctx: MappingContext) -> Resource:
    out = resource(ident, ctx)
    out["clinicalStatus"] = term(TABLE, "allergy-clinical-active", ctx)
    out["verificationStatus"] = term(TABLE, verification_key, ctx)
    return out


def _add_context(
    out: Resource, record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> None:
    """patient, encounter, recordedDate and recorder, in the spec's element order."""
    out["patient"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["recordedDate"] = fhir_datetime(record.reviewed_at)
    recorder = refs.reviewer(record.reviewed_by, scope, ctx)
    if recorder:
        out["recorder"] = recorder


def _reaction(allergy: AllergyRecord) -> JsonObject:
    manifestation: JsonObject = (
        {"text": allergy.reaction}
        if allergy.reaction is not None
        else {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    )
    out: JsonObject = {"manifestation": [manifestation]}
    if allergy.severity is not None:
        out["severity"] = allergy.severity
    return out


def unmap_allergies(
    resources: Sequence[Resource], review_key: str, ctx: MappingContext
) -> list[JsonValue] | None:
    """None when allergies were not recorded, [] for "no known allergies".

    Listed allergies win over a "no known allergy" resource, which an EHR may
    still hold from an earlier version of the same review.
    """
    found = refs.parts(resources, "AllergyIntolerance", refs.ALLERGY_KIND, review_key, ctx)
    listed = by_position(found)
    if listed:
        return [unmap_allergy(res) for res in listed]
    if any(part == refs.NO_KNOWN_ALLERGY for part, _ in found):
        return []
    return None


def unmap_allergy(res: Resource) -> JsonObject:
    """One allergy we wrote, as the contract's allergy JSON."""
    code = obj(res.get("code"))
    reaction = refs.first(res.get("reaction"))
    manifestation = refs.first(reaction.get("manifestation"))
    return {
        "substance": str_field(code, "text"),
        "reaction": str_field(manifestation, "text"),
        "severity": str_field(reaction, "severity"),
        "rxnorm": sent_rxnorm(code),
    }
