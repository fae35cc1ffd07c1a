"""The medication review: reconciliation Procedure, statements, allergies, interactions.

The review itself is a Procedure (SNOMED 430193006 Medication reconciliation,
terminology 4a) that each MedicationStatement is `derivedFrom`. The parts live beside
this module: statements, allergies, the interaction screen (DetectedIssue), RxNorm
codes, and the identities they share (`statements.py`, `allergies.py`,
`interactions.py`, `codes.py`, `refs.py`). The reverse mapping
rebuilds the record from the Procedure, the statements and the allergies, found by
identifier; the DetectedIssues are derived and not read back.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.lookup import identifier_value, str_field
from mappings.common.narrative import with_narratives
from mappings.common.people import provider_id_of
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import MedicationReview
from mappings.jsontypes import JsonValue, Resource
from mappings.medication_review import refs
from mappings.medication_review.allergies import map_allergies, unmap_allergies
from mappings.medication_review.interactions import map_interactions
from mappings.medication_review.statements import map_statements, unmap_statements

TABLE = "medication_review"


def map_medication_review(
    record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    """The review Procedure, then statements, allergies and interaction issues."""
    out = [_review(record, scope, ctx)]
    out.extend(map_statements(record, scope, ctx))
    out.extend(map_allergies(record, scope, ctx))
    out.extend(map_interactions(record, scope, ctx))
    return with_narratives(out)


def _review(record: MedicationReview, scope: EncounterScope, ctx: MappingContext) -> Resource:
    out = resource(refs.review(ctx, refs.review_key(record, scope, ctx)), ctx)
    out["status"] = "completed"
    out["code"] = term(TABLE, "review-medication-reconciliation", ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["performedDateTime"] = fhir_datetime(record.reviewed_at)
    reviewer = refs.reviewer(record.reviewed_by, scope, ctx)
    if reviewer:
        out["performer"] = [{"actor": reviewer}]
    if record.notes is not None:
        out["note"] = [{"text": record.notes}]
    return out


def unmap_medication_review(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> MedicationReview | None:
    """The review these resources hold, or None when there is no review Procedure."""
    found = _find_review(resources, ctx)
    if found is None:
        return None
    review, review_key = found
    performer = refs.first(review.get("performer"))
    document: dict[str, JsonValue] = {
        "review_id": identity.record_id_of(review_key),
        "reviewed_at": review.get("performedDateTime"),
        "reviewed_by": provider_id_of(performer.get("actor"), resources, ctx),
        "medications": unmap_statements(resources, review_key, ctx),
        "allergies": unmap_allergies(resources, review_key, ctx),
        "notes": str_field(refs.first(review.get("note")), "text"),
    }
    return MedicationReview.model_validate(document)


def _find_review(resources: Sequence[Resource], ctx: MappingContext) -> tuple[Resource, str] | None:
    """The first review Procedure (an encounter has at most one review) and its key."""
    system = identity.system(ctx, refs.REVIEW_KIND)
    for res in resources:
        review_key = identifier_value(res, system)
        if res.get("resourceType") == "Procedure" and review_key is not None:
            return res, review_key
    return None
