"""Identities and references shared by the medication-review mappers.

One place for the identifier kinds of the review's resources, so that the forward
mappings, the interaction screen and the reverse mapping agree on them. A review is named
by its record key (`<encounter_id>~<review_id>`), its parts `<review key>~<part>`: a
medication or allergy by its 1-based position in the record, an interaction by its class.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.identity import Identity
from mappings.common.lookup import objs, parts_by_owner
from mappings.common.people import practitioner_ref
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import MedicationReview
from mappings.jsontypes import JsonObject, JsonValue, Resource

REVIEW_KIND = "medication-review"
STATEMENT_KIND = "medication-statement"
ALLERGY_KIND = "allergy"
INTERACTION_KIND = "medication-interaction"
NO_KNOWN_ALLERGY = "none"
"""The allergy part that states "no known allergies" (never a position)."""


def review_key(record: MedicationReview, scope: EncounterScope, ctx: MappingContext) -> str:
    """The review's record key, which names its resources."""
    return scope.key(ctx, identity.REVIEW, record.review_id)


def review(ctx: MappingContext, review_key: str) -> Identity:
    return identity.identity(ctx, "Procedure", REVIEW_KIND, review_key)


def statement(ctx: MappingContext, review_key: str, position: int) -> Identity:
    return identity.identity(ctx, "MedicationStatement", STATEMENT_KIND, review_key, str(position))


def allergy(ctx: MappingContext, review_key: str, part: str) -> Identity:
    return identity.identity(ctx, "AllergyIntolerance", ALLERGY_KIND, review_key, part)


def interaction(ctx: MappingContext, review_key: str, interaction_class: str) -> Identity:
    return identity.identity(ctx, "DetectedIssue", INTERACTION_KIND, review_key, interaction_class)


def reviewer(provider_id: str | None, scope: EncounterScope, ctx: MappingContext) -> JsonObject:
    """A Reference to the reviewing Practitioner, or {} when the record names none."""
    return {} if provider_id is None else practitioner_ref(provider_id, scope, ctx)


def parts(
    resources: Sequence[Resource],
    resource_type: str,
    kind: str,
    review_key: str,
    ctx: MappingContext,
) -> list[tuple[str, Resource]]:
    """(part, resource) for each `resource_type` of identifier `kind` under `review_key`."""
    return parts_by_owner(resources, resource_type, identity.system(ctx, kind), review_key)


def first(value: JsonValue) -> JsonObject:
    found = objs(value)
    return found[0] if found else {}
