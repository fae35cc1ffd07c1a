"""What the infusion modules share: identities of the parts, staff references, dose units.

An infusion's adjunct drugs and adverse events have no clinic ids of their own, so
their identifiers are `<procedure_id>~<position>` (1-based): re-sending the same
infusion updates them in place, and the reverse mapping restores their order.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import identity, terminology
from mappings.builders import UCUM, number, quantity
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.contract.units import fmt
from mappings.identity import PART_SEPARATOR, Identity
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.lookup import identifier_value, obj, resolve, str_field
from mappings.scope import EncounterScope

ADJUNCT_KIND = "infusion-adjunct"
ADVERSE_EVENT_KIND = "infusion-adverse-event"
UNITS = "infusion_units"


def part_identity(
    ctx: MappingContext, resource_type: str, kind: str, procedure_id: str, index: int
) -> Identity:
    """The identity of the `index`-th (0-based) part of one kind of an infusion."""
    return identity.identity(ctx, resource_type, kind, procedure_id, str(index + 1))


def parts_of(
    resources: Sequence[Resource],
    resource_type: str,
    kind: str,
    procedure_id: str,
    ctx: MappingContext,
) -> list[Resource]:
    """The parts of one kind of an infusion, found by identifier, in their original order."""
    system = identity.identity(ctx, resource_type, kind, "-").system
    found: dict[int, Resource] = {}
    for res in resources:
        if res.get("resourceType") != resource_type:
            continue
        owner, _, position = (_identifier_value(res, system) or "").rpartition(PART_SEPARATOR)
        if owner == procedure_id and position.isdigit():
            found.setdefault(int(position), res)
    return [found[position] for position in sorted(found)]


def _identifier_value(res: Resource, system: str) -> str | None:
    """Like `lookup.identifier_value`, also for a single Identifier (R4 AdverseEvent)."""
    single = obj(res.get("identifier"))
    if single:
        return str_field(single, "value") if single.get("system") == system else None
    return identifier_value(res, system)


def practitioner_ref(provider_id: str, scope: EncounterScope, ctx: MappingContext) -> JsonObject:
    """A reference that also names the provider's identifier.

    A per-record submission (and an EHR that rewrote the reference to its own id)
    may come back without the Practitioner itself: the identifier still says who.
    """
    ident = identity.practitioner(ctx, provider_id)
    out: JsonObject = {"reference": ident.reference, "identifier": ident.identifier()}
    provider = scope.provider(provider_id)
    if provider is not None:
        out["display"] = provider.name
    return out


def provider_id_of(
    reference: JsonValue, resources: Sequence[Resource], ctx: MappingContext
) -> str | None:
    """The clinic's provider id behind a Practitioner reference, by identifier."""
    system = identity.practitioner(ctx, "-").system
    ref = obj(reference)
    named = obj(ref.get("identifier"))
    if named.get("system") == system:
        return str_field(named, "value")
    target = resolve(resources, ref)
    return identifier_value(target, system) if target is not None else None


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
