"""Shared FHIR datatype builders: codings, quantities, periods, references, meta.

Mappers build plain JSON dicts (the fast path); tests prove each resource type
is accepted by the `fhir.resources` R4B models and by the sandbox's validator.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date, datetime

from mappings import terminology
from mappings.common.identity import Identity
from mappings.context import MappingContext, SecurityLabels
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.terminology import CLINIC_SYSTEM, Code

UCUM = "http://unitsofmeasure.org"


def fhir_datetime(value: datetime) -> str:
    """FHIR dateTime keeping the sender's own UTC offset (`Z` for UTC)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def fhir_date(value: date) -> str:
    return value.isoformat()


def number(value: float) -> int | float:
    """A JSON number without a spurious `.0`, so 150 lb stays `150`."""
    return int(value) if float(value).is_integer() else value


def coding(code: Code, ctx: MappingContext) -> JsonObject:
    system = ctx.code_system if code.system == CLINIC_SYSTEM else code.system
    out: JsonObject = {"system": system, "code": code.code}
    if code.display:
        out["display"] = code.display
    return out


def concept(codes: Iterable[Code], ctx: MappingContext, text: str | None = None) -> JsonObject:
    """A CodeableConcept of the given codes (possibly none) and an optional text."""
    out: JsonObject = {}
    codings: list[JsonValue] = [coding(c, ctx) for c in codes]
    if codings:
        out["coding"] = codings
    if text is not None:
        out["text"] = text
    return out


def term(table: str, key: str, ctx: MappingContext, text: str | None = None) -> JsonObject:
    """The CodeableConcept of every coding a terminology table holds for `key`."""
    return concept(terminology.codes(table, key), ctx, text)


def quantity(value: float, ucum_code: str, unit: str | None = None) -> JsonObject:
    return {
        "value": number(value),
        "unit": unit if unit is not None else ucum_code,
        "system": UCUM,
        "code": ucum_code,
    }


def period(start: datetime | None, end: datetime | None) -> JsonObject:
    out: JsonObject = {}
    if start is not None:
        out["start"] = fhir_datetime(start)
    if end is not None:
        out["end"] = fhir_datetime(end)
    return out


def meta(ctx: MappingContext) -> JsonObject:
    """`meta.security`: confidentiality plus information-sensitivity labels."""
    return {"security": security_labels(ctx.security)}


def security_labels(security: SecurityLabels) -> list[JsonValue]:
    """The labels our rules give every resource: confidentiality, then sensitivities."""
    return [{"system": system, "code": code} for system, code in _label_pairs(security)]


@functools.cache
def _label_pairs(security: SecurityLabels) -> tuple[tuple[str, str], ...]:
    # Called for every resource mapped and every version pulled: the table look-ups once.
    confidentiality = terminology.systems()["v3-confidentiality"]
    actcode = terminology.systems()["v3-actcode"]
    pairs = [(confidentiality, security.confidentiality)]
    return tuple(pairs + [(actcode, code) for code in security.sensitivity])


# v3-Confidentiality codes, least to most restricted.
CONFIDENTIALITY_ORDER = ("U", "L", "M", "N", "R", "V")


def labelled(res: Resource, security: SecurityLabels) -> Resource:
    """`res` (say, an EHR's version of a resource) carrying the labels our rules give it.

    Our sensitivity labels are added to the ones it has; of two confidentiality codes the
    more restricted one stays, so a label never loosens what the other side set. Other
    labels are kept. `meta` follows `id`, as in what the mappers write.
    """
    found = res.get("meta")
    kept = found if isinstance(found, dict) else {}
    theirs = kept.get("security")
    labels = _merged(theirs, security) if theirs else security_labels(security)
    out: Resource = {key: res[key] for key in ("resourceType", "id") if key in res}
    out["meta"] = None  # its place, after `id`; `update` keeps places, replaces values
    out.update(res)
    out["meta"] = {**kept, "security": labels}
    return out


def _merged(theirs: JsonValue, security: SecurityLabels) -> list[JsonValue]:
    confidentiality = terminology.systems()["v3-confidentiality"]
    ours = security_labels(security)
    others: list[JsonValue] = []
    code = security.confidentiality
    for label in theirs if isinstance(theirs, list) else []:
        if not isinstance(label, dict):
            continue
        if label.get("system") == confidentiality:
            code = _stricter(code, label.get("code"))
        elif label not in ours:
            others.append(label)
    return [{"system": confidentiality, "code": code}, *ours[1:], *others]


def _stricter(ours: str, theirs: JsonValue) -> str:
    if not isinstance(theirs, str) or theirs not in CONFIDENTIALITY_ORDER:
        return ours
    if ours not in CONFIDENTIALITY_ORDER:
        return theirs
    return max(ours, theirs, key=CONFIDENTIALITY_ORDER.index)


# R4 types with no `identifier` element: their identity travels in a clinic extension,
# and they are written by their (deterministic) logical id instead of by identifier.
WITHOUT_IDENTIFIER = frozenset({"Provenance"})
SOURCE_IDENTIFIER = "source-identifier"


def resource(ident: Identity, ctx: MappingContext, identifier_type: str | None = None) -> Resource:
    """The common head of every mapped resource: type, id, meta, identifier."""
    head: Resource = {"resourceType": ident.resource_type, "id": ident.id, "meta": meta(ctx)}
    if ident.resource_type in WITHOUT_IDENTIFIER:
        head["extension"] = [
            extension(ctx, SOURCE_IDENTIFIER, valueIdentifier=ident.identifier(identifier_type))
        ]
    else:
        head["identifier"] = [ident.identifier(identifier_type)]
    return head


def extension(ctx: MappingContext, name: str, **value: JsonValue) -> JsonObject:
    """A clinic extension `<namespace>/StructureDefinition/<name>` with one value[x]."""
    ((key, val),) = value.items()
    return {"url": ctx.extension_url(name), key: val}
