"""What the infusion modules share: identities of the parts, staff references, dose units.

An infusion's adjunct drugs and adverse events have no clinic ids of their own, so
their identifiers are `<procedure key>~<position>` (1-based; the key is the infusion's
record key, `<encounter_id>~<procedure_id>`): re-sending the same infusion updates them
in place, and the reverse mapping restores their order.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import UCUM, number, quantity
from mappings.common.identity import Identity
from mappings.common.lookup import by_position, obj, parts_by_owner, str_field
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.contract.units import fmt
from mappings.jsontypes import JsonObject, JsonValue, Resource

ADJUNCT_KIND = "infusion-adjunct"
ADVERSE_EVENT_KIND = "infusion-adverse-event"
UNITS = "infusion_units"


def procedure_key(record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext) -> str:
    """The infusion's record key, which names its resources."""
    return scope.key(ctx, identity.PROCEDURE, record.procedure_id)


def part_identity(
    ctx: MappingContext, resource_type: str, kind: str, procedure_key: str, index: int
) -> Identity:
    """The identity of the `index`-th (0-based) part of one kind of an infusion."""
    return identity.identity(ctx, resource_type, kind, procedure_key, str(index + 1))


def parts_of(
    resources: Sequence[Resource],
    resource_type: str,
    kind: str,
    procedure_key: str,
    ctx: MappingContext,
) -> list[Resource]:
    """The parts of one kind of an infusion, found by identifier, in their original order."""
    system = identity.system(ctx, kind)
    return by_position(parts_by_owner(resources, resource_type, system, procedure_key))


def dose_quantity(value: float, unit: str) -> JsonObject:
    """A Quantity in UCUM, its human `unit` the contract's own (`lb` is `[lb_av]`).

    A unit outside the table cannot pass the contract; should one reach here anyway
    it is kept as text (no UCUM code is guessed), as the vitals mapper does.
    """
    if not terminology.has(UNITS, unit):
        return {"value": number(value), "unit": unit}
    return quantity(value, terminology.code(UNITS, unit).code, unit)


def dose_unit(value: JsonValue) -> str | None:
    """The contract unit (`mg`, `mg/kg`, `kg`, `lb`) of a Quantity: by UCUM code, else text."""
    found = obj(value)
    code = found.get("code")
    if found.get("system") == UCUM and isinstance(code, str):
        key = terminology.key_for(UNITS, UCUM, code)
        if key is not None:
            return key
    return str_field(found, "unit")


def dose_text(record: InfusionProcedure) -> str:
    """The dose as a clinician writes it, e.g. `0.5 mg/kg × 68 kg = 34 mg`."""
    total = f"{fmt(record.total_dose_mg)} mg"
    if record.dose_mg_per_kg is None:
        return total
    per_kg = f"{fmt(record.dose_mg_per_kg)} mg/kg"
    if record.weight is None:
        return f"{total} ({per_kg})"
    return f"{per_kg} × {fmt(record.weight.value)} {record.weight.unit} = {total}"
