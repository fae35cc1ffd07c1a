"""Identities and references shared by the medication-review mappers.

One place for the identifier kinds of the review's resources, so that the forward
mappings, the interaction screen and the reverse mapping agree on them. Parts of a
review are named `<review_id>~<part>`: a medication or allergy by its 1-based
position in the record, an interaction by its class.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import identity
from mappings.context import MappingContext
from mappings.identity import PART_SEPARATOR, Identity
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.lookup import identifier_value, obj, objs, resolve, str_field
from mappings.scope import EncounterScope

REVIEW_KIND = "medication-review"
STATEMENT_KIND = "medication-statement"
ALLERGY_KIND = "allergy"
INTERACTION_KIND = "medication-interaction"
NO_KNOWN_ALLERGY = "none"
"""The allergy part that states "no known allergies" (never a position)."""


def review(ctx: MappingContext, review_id: str) -> Identity:
    return identity.identity(ctx, "Procedure", REVIEW_KIND, review_id)


def statement(ctx: MappingContext, review_id: str, position: int) -> Identity:
    return identity.identity(ctx, "MedicationStatement", STATEMENT_KIND, review_id, str(position))


def allergy(ctx: MappingContext, review_id: str, part: str) -> Identity:
    return identity.identity(ctx, "AllergyIntolerance", ALLERGY_KIND, review_id, part)


def interaction(ctx: MappingContext, review_id: str, interaction_class: str) -> Identity:
    return identity.identity(ctx, "DetectedIssue", INTERACTION_KIND, review_id, interaction_class)


def device(ctx: MappingContext) -> Identity:
    """The adapter, author of the automated interaction screen (as in `people.map_device`)."""
    return identity.identity(ctx, "Device", "device", ctx.adapter_name)


def reviewer(provider_id: str | None, scope: EncounterScope, ctx: MappingContext) -> JsonObject:
    """A Reference to the reviewing Practitioner, or {} when the record names none.

    It carries the practitioner's identifier as well as the reference, so the
    reverse mapping finds the provider id even when an EHR has rewritten the
    reference to its own ids and the Practitioner is not among the resources.
    """
    if provider_id is None:
        return {}
    ident = identity.practitioner(ctx, provider_id)
    out: JsonObject = {"reference": ident.reference, "identifier": ident.identifier()}
    provider = scope.provider(provider_id)
    if provider is not None:
        out["display"] = provider.name
    return out


def reviewer_id(
    reference: JsonValue, resources: Sequence[Resource], ctx: MappingContext
) -> str | None:
    """The provider id behind a Reference written by `reviewer` (or resolvable to one)."""
    ref = obj(reference)
    system = identity.practitioner(ctx, "-").system
    ident = obj(ref.get("identifier"))
    if ident.get("system") == system:
        return str_field(ident, "value")
    target = resolve(resources, ref)
    return identifier_value(target, system) if target is not None else None


def parts(
    resources: Sequence[Resource],
    resource_type: str,
    kind: str,
    review_id: str,
    ctx: MappingContext,
) -> list[tuple[str, Resource]]:
    """(part, resource) for each `resource_type` of identifier `kind` under `review_id`."""
    system = identity.identity(ctx, resource_type, kind, review_id).system
    prefix = review_id + PART_SEPARATOR
    found: list[tuple[str, Resource]] = []
    for res in resources:
        if res.get("resourceType") != resource_type:
            continue
        value = identifier_value(res, system)
        if value is not None and value.startswith(prefix):
            found.append((value[len(prefix) :], res))
    return found


def by_position(found: list[tuple[str, Resource]]) -> list[Resource]:
    """The resources whose part is a position, in the record's order."""
    numbered = [(int(part), res) for part, res in found if part.isascii() and part.isdigit()]
    return [res for _, res in sorted(numbered, key=lambda pair: pair[0])]


def first(value: JsonValue) -> JsonObject:
    found = objs(value)
    return found[0] if found else {}
