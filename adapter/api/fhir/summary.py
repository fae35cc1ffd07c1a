"""`_summary` (true, text, data) and `_elements`: a search's resources, subsetted.

    true      the elements R4 marks as summary (`isSummary`), with id and meta
    text      text, id, meta and the mandatory top-level elements
    data      everything but text
    _elements the elements named, with id, meta and the mandatory top-level elements

Which elements are summary or mandatory comes from the R4 models of `fhir.resources` (the
spec's own structure definitions). A subsetted resource carries the `SUBSETTED` tag in its
meta, as R4 asks, so no reader takes it for the whole.
"""

from __future__ import annotations

import functools
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from adapter.api.fhir.common import AnswerValue, with_meta
from adapter.store.search import Found

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = ("resourceType", "id", "meta")


def summarised_entry(
    base: str, found: Found, mode: str, asked: tuple[str | None, tuple[str, ...]]
) -> AnswerValue:
    """The search entry of `found`, its resource subsetted as `asked` (summary, elements)."""
    resource = with_meta(found.content, found.version, found.last_updated)
    summary, elements = asked
    return {
        "fullUrl": f"{base}/{found.reference}",
        "resource": subsetted(resource, summary, elements),
        "search": {"mode": mode},
    }


def subsetted(resource: dict[str, Any], summary: str | None, elements: tuple[str, ...]) -> Any:
    """`resource` as `_summary=summary` and `_elements=elements` ask (see the module doc)."""
    resource_type = str(resource["resourceType"])
    if summary == "data":
        kept = {name for name in resource if name != "text"}
    elif summary == "text":
        kept = {"text", *_mandatory(resource_type)}
    elif summary == "true":
        kept = set(_summary_elements(resource_type))
    else:
        kept = {*elements, *_mandatory(resource_type)}
    kept |= {f"_{name}" for name in kept} | set(_ALWAYS)
    out = {name: value for name, value in resource.items() if name in kept}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    out["meta"] = meta
    return out


@functools.cache
def _fields(resource_type: str) -> tuple[tuple[str, bool, bool], ...]:
    """(JSON name, is summary, is mandatory) of each element of the type."""
    model = get_fhir_model_class(resource_type)
    found = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        summary = bool(extra.get("summary_element_property"))
        mandatory = field.is_required() or bool(extra.get("element_required"))
        found.append((field.alias or name, summary, mandatory))
    return tuple(found)


def _summary_elements(resource_type: str) -> tuple[str, ...]:
    return tuple(name for name, summary, _ in _fields(resource_type) if summary)


def _mandatory(resource_type: str) -> tuple[str, ...]:
    return tuple(name for name, _, mandatory in _fields(resource_type) if mandatory)
