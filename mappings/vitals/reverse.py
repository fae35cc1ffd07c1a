"""Vital-sign Observations back to the clinic's reading sets (`unmap_vitals`).

Resources are found by identifier (`<namespace>/sid/vitals|<vitals key>~<part>`), never
by logical id, so copies an EHR returns (its own ids, versions, extra elements, other
element order) give the same records. Only contract fields are read back: the
interpretation and `partOf` are derived from them, so they are not needed here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.identity import PART_SEPARATOR
from mappings.common.lookup import coding_key, ext_value, identifier_value, obj, objs
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import VitalsObservation
from mappings.jsontypes import JsonObject, Resource
from mappings.vitals.measures import (
    BLOOD_PRESSURE,
    BODY_POSITION_EXTENSION,
    BP_COMPONENTS,
    CODES,
    KIND,
    PANEL,
    PHASE_EXTENSION,
    PHASES,
    POSITIONS,
    SEQUENCE_EXTENSION,
    SINGLE_MEASURES,
    UNITS,
    vitals_identity,
)


def unmap_vitals(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> list[VitalsObservation]:
    """The reading sets of the encounter, in the order sent; empty when there are none.

    Observations are found by identifier (`<namespace>/sid/vitals`), so copies an EHR
    returns (its own ids, versions, extra elements, other order) map back the same.
    """
    found = _by_identifier_value(resources, scope, ctx)
    suffix = PART_SEPARATOR + PANEL
    panels = {v.removesuffix(suffix): res for v, res in found.items() if v.endswith(suffix)}
    order = sorted(panels, key=lambda key: (_sequence(panels[key], ctx), key))
    return [_unmap_reading(key, panels[key], found, ctx) for key in order]


def _by_identifier_value(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> dict[str, Resource]:
    """This encounter's vitals Observations by identifier value (first copy wins)."""
    system = identity.system(ctx, KIND)
    out: dict[str, Resource] = {}
    for res in resources:
        value = identifier_value(res, system) if res.get("resourceType") == "Observation" else None
        if value is not None and scope.holds(res, resources, ctx) is not False:
            out.setdefault(value, res)
    return out


def _sequence(panel: Resource, ctx: MappingContext) -> int:
    found = ext_value(panel, ctx.extension_url(SEQUENCE_EXTENSION), "valuePositiveInt")
    return found if isinstance(found, int) and not isinstance(found, bool) else sys.maxsize


def _unmap_reading(
    vitals_key: str, panel: Resource, found: dict[str, Resource], ctx: MappingContext
) -> VitalsObservation:
    def member(part: str) -> Resource | None:
        return found.get(vitals_identity(ctx, vitals_key, part).value)

    bp = member(BLOOD_PRESSURE)
    doc: JsonObject = {
        "vitals_id": identity.record_id_of(vitals_key),
        "taken_at": panel.get("effectiveDateTime"),
        "phase": _phase(panel, ctx),
        "position": _position(panel, ctx) or (_position(bp, ctx) if bp is not None else None),
    }
    if bp is not None:
        doc.update(_components(bp, ctx))
    for measure in SINGLE_MEASURES:
        res = member(measure.part)
        if res is not None:
            doc[measure.field] = _measurement(obj(res.get("valueQuantity")))
    return VitalsObservation.model_validate(doc)


def _components(bp: Resource, ctx: MappingContext) -> JsonObject:
    fields = {m.part: m.field for m in BP_COMPONENTS}
    out: JsonObject = {}
    for component in objs(bp.get("component")):
        key = coding_key(CODES, component.get("code"), ctx)
        if key in fields:
            out[fields[key]] = _measurement(obj(component.get("valueQuantity")))
    return out


def _measurement(value_quantity: JsonObject) -> JsonObject:
    """`{value, unit}` with the clinic's unit string for the UCUM code (else the unit text)."""
    system, code = value_quantity.get("system"), value_quantity.get("code")
    unit = None
    if isinstance(system, str) and isinstance(code, str):
        unit = terminology.key_for(UNITS, system, code)
    return {"value": value_quantity.get("value"), "unit": unit or value_quantity.get("unit")}


def _phase(res: Resource, ctx: MappingContext) -> str | None:
    found = ext_value(res, ctx.extension_url(PHASE_EXTENSION), "valueCoding")
    return coding_key(PHASES, {"coding": [found]}, ctx) if isinstance(found, dict) else None


def _position(res: Resource, ctx: MappingContext) -> str | None:
    found = ext_value(res, BODY_POSITION_EXTENSION, "valueCodeableConcept")
    return coding_key(POSITIONS, found, ctx)
