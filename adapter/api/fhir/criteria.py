"""One search parameter of a `/fhir/{type}` query as a `Criterion`: its modifier or chain.

    name                  a parameter of the type (adapter.store.search_parameters)
    name:missing          true|false, any parameter
    name:not              token: none of the codes
    name:exact|contains   string: as written / anywhere (default: starts with, case and
                          accents ignored)
    name:identifier       reference: by the Reference's identifier (system|value)
    name:Type             reference: to a resource of that type
    name[:Type].param     chain: `param` of the resource referred to (`patient.identifier`)
    _has:Type:ref:param   reverse chain: a `Type` whose `ref` names this resource matches

What this server cannot serve (an unknown parameter, modifier, chain or type) is given
back as the reason, naming it; the caller refuses it (400) or, when lenient, ignores it.
A value that cannot be one is always 400, naming the parameter, never the value.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC, datetime

from adapter.api.fhir.common import ID_PATTERN, SERVED_TYPES
from adapter.errors import RequestRefused
from adapter.store.search_index import date_range, paths_for
from adapter.store.search_parameters import TABLE
from adapter.store.search_query import Chain, Criterion, DateBound, Token

PREFIXES = ("eq", "ne", "ge", "le", "gt", "lt", "sa", "eb", "ap")
# The type a reference parameter names when the value (or a chain) gives none; a
# parameter not here may name several types, and a chain on it needs `:Type`.
REFERENCE_TARGETS = {
    "patient": "Patient",
    "subject": "Patient",
    "encounter": "Encounter",
    "context": "Encounter",
    "practitioner": "Practitioner",
    "request": "MedicationRequest",
    "organization": "Organization",
    "service-provider": "Organization",
}
# Reference parameters on a `canonical` element (a URL, not `Type/id`): their values are
# matched as written (`QuestionnaireResponse?questionnaire=http://loinc.org/q/44249-1`).
CANONICAL_PARAMETERS = {("QuestionnaireResponse", "questionnaire")}
_MODIFIERS = {
    "token": ("missing", "not"),
    "string": ("missing", "exact", "contains"),
    "reference": ("missing", "identifier"),
    "date": ("missing",),
}
# FHIR search parameter names begin with a lower-case letter (`patient`, `code:text`,
# `_has:Observation:patient:code`); anything else a caller typed there (an MRN...) is not
# repeated back.
_NAME = re.compile(r"_?[a-z][A-Za-z0-9\-]{0,63}(:[A-Za-z\-]{1,32}){0,3}(\.[a-z][A-Za-z\-]{0,31})?")


def shown(name: str) -> str:
    """A parameter's name as an answer may repeat it: only when it looks like one."""
    return repr(name) if _NAME.fullmatch(name) else "(a parameter with an unusual name)"


def kind_of(resource_type: str, name: str) -> str | None:
    """The FHIR type of the type's parameter `name`; None when it has none such."""
    if name in ("_id", "_lastUpdated"):
        return "id" if name == "_id" else "date"
    if not paths_for(name, resource_type):
        return None
    return TABLE[resource_type][name][0]


def criterion(resource_type: str, name: str, raw: str) -> Criterion | str:
    """The criterion of `name=raw`, or why it cannot be served (naming what is not)."""
    if name.startswith("_has:"):
        return _reverse_chain(resource_type, name, raw)
    head, dot, inner = name.partition(".")
    param, _, modifier = head.partition(":")
    kind = kind_of(resource_type, param)
    if kind is None:
        return f"unknown search parameter {shown(param)} for {resource_type}"
    if dot:
        return _chain(param, kind, modifier, inner, raw, name)
    if modifier and modifier in SERVED_TYPES and kind == "reference":
        refs = tuple(parse_reference(param, part, modifier) for part in raw.split(","))
        return Criterion(param, kind, refs)
    if modifier and modifier not in _MODIFIERS.get(kind, ()):
        return f"search parameter modifier {shown(head)} is not supported"
    if modifier == "missing":
        return Criterion(param, kind, (_boolean(name, raw),), modifier)
    if not modifier and (resource_type, param) in CANONICAL_PARAMETERS:
        return Criterion(param, kind, tuple(_canonical(param, part) for part in raw.split(",")))
    value_kind = "token" if modifier == "identifier" else kind
    values: tuple[Token | DateBound | str, ...] = tuple(
        parse_value(param, value_kind, part) for part in raw.split(",")
    )
    return Criterion(param, kind, values, modifier)


def _chain(
    param: str, kind: str, modifier: str, inner: str, raw: str, name: str
) -> Criterion | str:
    """`param[:Type].inner`: a reference parameter, the type it names, its parameter."""
    target = modifier or REFERENCE_TARGETS.get(param)
    if kind != "reference" or target not in SERVED_TYPES or target is None:
        return f"chain {shown(name)} is not supported (a reference to one type: use :Type)"
    inner_kind = kind_of(target, inner)
    if inner_kind in (None, "id") or inner_kind == "reference" or "." in inner:
        return f"chain {shown(name)} is not supported ({target} has no such parameter)"
    assert inner_kind is not None
    values = tuple(parse_value(name, inner_kind, part) for part in raw.split(","))
    return Criterion(param, kind, values, "", Chain(target, inner, inner_kind))


def _reverse_chain(resource_type: str, name: str, raw: str) -> Criterion | str:
    """`_has:Type:ref:param`: resources of `Type` whose `ref` names this one, by `param`."""
    parts = name.split(":")
    unsupported = f"reverse chain {shown(name)} is not supported"
    if len(parts) != 4 or parts[1] not in SERVED_TYPES:
        return unsupported
    source, via, inner = parts[1:]
    named = REFERENCE_TARGETS.get(via)
    if kind_of(source, via) != "reference" or named not in (None, resource_type):
        return unsupported
    inner_kind = kind_of(source, inner)
    if inner_kind in (None, "id", "reference"):
        return unsupported
    assert inner_kind is not None
    values = tuple(parse_value(name, inner_kind, part) for part in raw.split(","))
    return Criterion("_has", "reference", values, "", Chain(source, inner, inner_kind, via))


def parse_value(name: str, kind: str, part: str) -> Token | DateBound | str:
    if kind == "date":
        return parse_date(name, part)
    if kind == "token":
        system, bar, code = part.partition("|")
        if not (code or system):
            raise RequestRefused(f"{name} needs a code (system|code, system|, |code or code)")
        return Token(system, code) if bar else Token(None, system)
    if kind == "reference":
        return parse_reference(name, part)
    if kind == "string":
        if not part:
            raise RequestRefused(f"{name} needs a text to match")
        return part
    if not ID_PATTERN.fullmatch(part):
        raise RequestRefused(f"{name} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")
    return part


def _canonical(name: str, part: str) -> str:
    if "://" not in part and not part.startswith("urn:"):
        raise RequestRefused(f"{name} is a canonical URL")
    return part


def _boolean(name: str, raw: str) -> str:
    if raw not in ("true", "false"):
        raise RequestRefused(f"{name} is true or false")
    return raw


def parse_date(name: str, part: str, now: datetime | None = None) -> DateBound:
    """`[prefix]date`, over the date's own precision; `ap` widens it by a tenth of its
    distance from now (R4 leaves the margin to the server)."""
    prefix = part[:2] if part[:2].isalpha() else "eq"
    text = part[2:] if part[:2].isalpha() else part
    if prefix not in PREFIXES:
        raise RequestRefused(f"{name}: prefix {prefix!r} is not supported ({', '.join(PREFIXES)})")
    # An unencoded `+` of a time zone offset reads as a space.
    bounds = date_range(text.replace(" ", "+"))
    if bounds is None:
        raise RequestRefused(f"{name} is not a FHIR date or dateTime")
    lo, hi = bounds
    if prefix == "ap":
        margin = abs((now or datetime.now(UTC)) - lo) / 10
        with suppress(OverflowError):  # past year 1 or 9999: the date's own range
            lo, hi = lo - margin, hi + margin
    return DateBound(prefix, lo, hi)


def parse_reference(name: str, part: str, only: str | None = None) -> str:
    """`Type/id`, a URL ending in one, or a bare id: the `Type/id` (or `*/id`) to match;
    `only` is the type a `:Type` modifier names."""
    segments = part.rstrip("/").split("/")
    logical_id = segments[-1]
    default = only or REFERENCE_TARGETS.get(name, "*")
    resource_type = segments[-2] if len(segments) >= 2 else default
    if (
        not ID_PATTERN.fullmatch(logical_id)
        or (resource_type != "*" and resource_type not in SERVED_TYPES)
        or (only is not None and resource_type != only)
    ):
        raise RequestRefused(f"{name} is not a reference to a resource of this server")
    return f"{resource_type}/{logical_id}"
