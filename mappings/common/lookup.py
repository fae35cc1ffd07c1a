"""Finding things in FHIR JSON for the reverse mappings, tolerant of what EHRs add.

Resources are found by identifier (EHRs assign their own ids); values are read
defensively, since an EHR may drop, add or reorder elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from mappings import terminology
from mappings.common.identity import PART_SEPARATOR, Identity
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.terminology import CLINIC_SYSTEM

# A resource, or whatever the caller keeps a resource in (a stored row, say).
Part = TypeVar("Part")


def obj(value: JsonValue) -> JsonObject:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objs(value: JsonValue) -> list[JsonObject]:
    """The JSON objects in `value` if it is a list, else none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def str_field(value: JsonObject, key: str) -> str | None:
    found = value.get(key)
    return found if isinstance(found, str) else None


def identifiers(res: Resource) -> list[JsonObject]:
    """A resource's identifiers: a list in most types, a single one in some R4 types
    (AdverseEvent, QuestionnaireResponse), or for types without the element (Provenance)
    the one our `source-identifier` extension carries."""
    found = res.get("identifier")
    listed = [found] if isinstance(found, dict) else objs(found)
    for ext in objs(res.get("extension")):
        url, value = ext.get("url"), ext.get("valueIdentifier")
        if isinstance(url, str) and url.endswith("/source-identifier") and isinstance(value, dict):
            listed.append(value)
    return listed


def has_identifier(res: Resource, system: str, value: str | None = None) -> bool:
    return any(
        i.get("system") == system and (value is None or i.get("value") == value)
        for i in identifiers(res)
    )


def by_identity(resources: Sequence[Resource], ident: Identity) -> Resource | None:
    """The resource of `ident`'s type carrying its identifier, if any."""
    return next(
        (
            r
            for r in resources
            if r.get("resourceType") == ident.resource_type
            and has_identifier(r, ident.system, ident.value)
        ),
        None,
    )


def identifier_value(res: Resource, system: str) -> str | None:
    return next(
        (str_field(i, "value") for i in identifiers(res) if i.get("system") == system),
        None,
    )


def ext_value(res: JsonObject, url: str, key: str) -> JsonValue:
    """The `key` (e.g. `valueBoolean`) of the first extension with `url`, or None."""
    return next((e.get(key) for e in objs(res.get("extension")) if e.get("url") == url), None)


def coding_key(table: str, codings: JsonValue, ctx: MappingContext) -> str | None:
    """The table key of a coding in a CodeableConcept that the table knows.

    The clinic's own codes are looked at first: a standard code may be shared by
    two keys (treatment-resistant and other major depression), a local one never.
    """
    found = objs(obj(codings).get("coding"))
    found.sort(key=lambda c: c.get("system") != ctx.code_system)
    for c in found:
        system = c.get("system")
        code = c.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            continue
        key_system = CLINIC_SYSTEM if system == ctx.code_system else system
        key = terminology.key_for(table, key_system, code)
        if key is not None:
            return key
    return None


def first_coding_key(table: str, concepts: JsonValue, ctx: MappingContext) -> str | None:
    """Like `coding_key`, over a list of CodeableConcepts."""
    for concept in objs(concepts):
        key = coding_key(table, concept, ctx)
        if key is not None:
            return key
    return None


def resolve(resources: Sequence[Resource], reference: JsonObject) -> Resource | None:
    """The resource a Reference points at, by `Type/id` (or by its identifier)."""
    target = reference.get("reference")
    if isinstance(target, str) and "/" in target:
        target = target.split("/_history/", 1)[0]
        rtype, _, rid = target.rpartition("/")
        rtype = rtype.rsplit("/", 1)[-1]
        return next(
            (r for r in resources if r.get("resourceType") == rtype and r.get("id") == rid), None
        )
    ident = obj(reference.get("identifier"))
    system, value = ident.get("system"), ident.get("value")
    if isinstance(system, str) and isinstance(value, str):
        return next((r for r in resources if has_identifier(r, system, value)), None)
    return None


def parts_by_owner(
    resources: Sequence[Resource], resource_type: str, system: str, owner: str
) -> list[tuple[str, Resource]]:
    """(part, resource) for each `resource_type` whose identifier under `system` is
    `<owner>~<part>`: the numbered or named parts of one clinic record."""
    prefix = owner + PART_SEPARATOR
    found: list[tuple[str, Resource]] = []
    for res in resources:
        if res.get("resourceType") != resource_type:
            continue
        value = identifier_value(res, system)
        if value is not None and value.startswith(prefix):
            found.append((value[len(prefix) :], res))
    return found


def by_position(found: Sequence[tuple[str, Part]]) -> list[Part]:
    """The resources whose part is a position, in the record's order (first copy wins)."""
    numbered: dict[int, Part] = {}
    for part, res in found:
        if part.isascii() and part.isdigit():
            numbered.setdefault(int(part), res)
    return [numbered[position] for position in sorted(numbered)]
