"""A mapped encounter as a FHIR transaction Bundle of conditional updates.

Each entry is `PUT Type?identifier=system|value`, so posting the Bundle twice
updates in place instead of duplicating, on any FHIR server. References between
entries become the entries' `urn:uuid:` fullUrls; references to resources
outside the Bundle (a per-record submission's patient) become conditional
references on their identifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from mappings.common.builders import WITHOUT_IDENTIFIER
from mappings.common.identity import Identity
from mappings.common.lookup import identifiers, str_field
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue, Resource


def resource_identity(res: Resource, ctx: MappingContext) -> Identity:
    """The identity a mapped resource was built from (its identifier in our namespace)."""
    prefix = f"{ctx.namespace}/sid/"
    for ident in identifiers(res):
        system, value = str_field(ident, "system"), str_field(ident, "value")
        if system is not None and value is not None and system.startswith(prefix):
            return Identity(str(res["resourceType"]), system, value)
    raise ValueError(f"{res.get('resourceType')} has no identifier under {prefix}")


# R4 types a server cannot search by identifier (no element, or no search parameter:
# R4 AdverseEvent has the element but not the parameter); they are written by their
# deterministic logical id instead, which needs a server that accepts client ids.
WRITTEN_BY_ID = WITHOUT_IDENTIFIER | {"AdverseEvent"}


def conditional_url(ident: Identity) -> str:
    """`Type?identifier=system|value`, or `Type/id` for a type not searchable by identifier."""
    if ident.resource_type in WRITTEN_BY_ID:
        return f"{ident.resource_type}/{ident.id}"
    search = quote(f"{ident.system}|{ident.value}", safe=":/|~")
    return f"{ident.resource_type}?identifier={search}"


def transaction_bundle(
    resources: Sequence[Resource],
    ctx: MappingContext,
    *,
    external: Sequence[Identity] = (),
    bundle_type: str = "transaction",
) -> Resource:
    """A transaction (or batch) Bundle upserting `resources` by identifier."""
    identities = [resource_identity(r, ctx) for r in resources]
    targets = {i.reference: i.urn for i in identities}
    targets.update({i.reference: conditional_url(i) for i in external})
    entries: list[JsonValue] = []
    for res, ident in zip(resources, identities, strict=True):
        body = _rewrite(res, targets)
        assert isinstance(body, dict)
        if ident.resource_type not in WRITTEN_BY_ID:
            body.pop("id", None)  # the server assigns its own; we match on identifier
        entries.append(
            {
                "fullUrl": ident.urn,
                "resource": body,
                "request": {"method": "PUT", "url": conditional_url(ident)},
            }
        )
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def _rewrite(value: JsonValue, targets: dict[str, str]) -> JsonValue:
    """A deep copy of `value` with every `reference` found in `targets` replaced."""
    if isinstance(value, dict):
        out: JsonObject = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in targets:
                out[key] = targets[item]
            else:
                out[key] = _rewrite(item, targets)
        return out
    if isinstance(value, list):
        return [_rewrite(item, targets) for item in value]
    return value
