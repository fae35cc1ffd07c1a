"""Generated narratives: one short xhtml sentence saying what a resource is, in words.

Every resource the mappers finish carries `text` with status `generated` (R4 dom-6: EHR
screens show it where they cannot render the resource). The sentence is built from the
resource alone, from its coded content: its kind, the display of its main concept, its
value, status and time, a person's or an organisation's name. Never from free text
(`note`, `detail`, `valueString`), never from identifiers, so the narrative says nothing
the structured elements do not, and holds no id of ours. Everything is escaped.

Built from the resource rather than from the clinic record, it can be made again for any
resource (one an EHR changed, say), and the reverse mappings ignore it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from html import escape

from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject, JsonValue, Resource

XHTML = "http://www.w3.org/1999/xhtml"
GENERATED = "generated"

# The element that says what the resource is about, first found wins.
_CONCEPTS = ("code", "medicationCodeableConcept", "event", "vaccineCode", "type")
# The element that says when, first found wins.
_TIMES = (
    "effectiveDateTime",
    "effectivePeriod",
    "performedDateTime",
    "performedPeriod",
    "occurrenceDateTime",
    "authoredOn",
    "authored",
    "onsetDateTime",
    "recordedDate",
    "identifiedDateTime",
    "dateAsserted",
    "date",
    "recorded",
    "period",
)
_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])")


def with_narrative(res: Resource) -> Resource:
    """`res` with its generated `text`, placed after `meta` as R4 orders elements."""
    text: JsonObject = {"status": GENERATED, "div": narrative_div(res)}
    out: Resource = {key: res[key] for key in ("resourceType", "id", "meta") if key in res}
    out["text"] = text
    out.update(res)
    out["text"] = text
    return out


def with_narratives(resources: Iterable[Resource]) -> list[Resource]:
    return [with_narrative(res) for res in resources]


def narrative_div(res: Resource) -> str:
    """The xhtml `div` of `res`: its kind in bold, then what it says."""
    said = escape("; ".join(fact for fact in _facts(res) if fact), quote=False)
    title = _title(str_field(res, "resourceType") or "Resource")
    return f'<div xmlns="{XHTML}"><p>{title}{": " if said else ""}{said}</p></div>'


def _facts(res: Resource) -> list[str | None]:
    return [
        _what(res),
        _value(res),
        _concept(res.get("interpretation")),
        _status(res),
        _person(res),
        _when(res),
        _count(res, "target", "resources"),
        _count(res, "item", "items"),
    ]


@functools.cache
def _title(kind: str) -> str:
    """`MedicationAdministration` as `<b>Medication administration</b>`."""
    first, *rest = _WORD_BREAK.split(kind)
    return f"<b>{escape(' '.join([first, *(word.lower() for word in rest)]))}</b>"


def _what(res: Resource) -> str | None:
    for key in ("name", "deviceName"):
        name = _name(res.get(key))
        if name:
            return name
    for key in _CONCEPTS:
        said = _concept(res.get(key))
        if said:
            return said
    return _coding(obj(res.get("class")))


def _name(value: JsonValue) -> str | None:
    if isinstance(value, str):
        return value
    first = next(iter(objs(value)), None)
    if first is None:
        return None
    if text := str_field(first, "text") or str_field(first, "name"):
        return text
    listed = first.get("given")
    given = [g for g in listed if isinstance(g, str)] if isinstance(listed, list) else []
    family = str_field(first, "family")
    return " ".join([*given, *([family] if family else [])]) or None


def _concept(value: JsonValue) -> str | None:
    """A CodeableConcept (or the first of a list of them) in words."""
    concept = value if isinstance(value, dict) else next(iter(objs(value)), {})
    if "code" in concept:  # a Coding (AuditEvent.type, say)
        return _coding(concept)
    codings = objs(concept.get("coding"))
    displayed = next((d for c in codings if (d := str_field(c, "display"))), None)
    return displayed or str_field(concept, "text") or next(iter(map(_coding, codings)), None)


def _coding(coding: JsonObject) -> str | None:
    """A Coding in words: its display, else its code."""
    return str_field(coding, "display") or str_field(coding, "code")


def _value(res: Resource) -> str | None:
    values = [_value_of(res), *(_component(c) for c in objs(res.get("component")))]
    return ", ".join(v for v in values if v) or None


def _component(component: JsonObject) -> str | None:
    value = _value_of(component)
    if value is None:
        return None
    name = _concept(component.get("code"))
    return f"{name} {value}" if name else value


def _value_of(holder: JsonObject) -> str | None:
    quantity = obj(holder.get("valueQuantity"))
    if "value" in quantity:
        unit = str_field(quantity, "unit") or str_field(quantity, "code")
        return f"{_scalar(quantity['value'])} {unit}" if unit else _scalar(quantity["value"])
    if "valueInteger" in holder:
        return _scalar(holder["valueInteger"])
    if "valueBoolean" in holder:
        return "yes" if holder["valueBoolean"] is True else "no"
    return _concept(holder.get("valueCodeableConcept"))


def _scalar(value: JsonValue) -> str:
    return str(value) if isinstance(value, int | float | str) else ""


def _status(res: Resource) -> str | None:
    status = str_field(res, "status")
    if status:
        return status
    return _concept(res.get("clinicalStatus"))


def _person(res: Resource) -> str | None:
    gender = str_field(res, "gender")
    born = str_field(res, "birthDate")
    said = [part for part in (gender, f"born {born}" if born else None) if part]
    return ", ".join(said) or None


def _when(res: Resource) -> str | None:
    for key in _TIMES:
        value = res.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return _period(value)
    return None


def _period(period: JsonObject) -> str | None:
    start, end = str_field(period, "start"), str_field(period, "end")
    if start and end:
        return f"{start} to {end}"
    return start or (f"until {end}" if end else None)


def _count(res: Resource, key: str, noun: str) -> str | None:
    found = res.get(key)
    return f"{len(found)} {noun}" if isinstance(found, list) and found else None


def refreshed(res: Resource) -> Resource:
    """`res` (an EHR's version, say) with a narrative that says what it says now.

    A generated narrative, or none, is made anew: an EHR's copy may carry ours from before
    its edit, one of its own, or none. One a person wrote (status `additional`,
    `extensions`, `empty`) is theirs and is kept.
    """
    text = obj(res.get("text"))
    if text and text.get("status") != GENERATED:
        return res
    return with_narrative(res)
