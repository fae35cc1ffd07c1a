"""Discharge as one Observation, and back.

`code` the clinic's `discharge-readiness`, `valueBoolean` true at `effectiveDateTime`, the
time the patient was judged fit to leave; one component says whether the escort was
confirmed, one per instruction given (no driving, alcohol or major decisions for 24 h, the
988 line). No standard code exists for either (terminology 1e): clinic codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.lookup import by_identity, coding_key, objs
from mappings.common.people import practitioner_ref, provider_id_of
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import Discharge
from mappings.jsontypes import JsonObject, JsonValue, Resource

TABLE = "care"
KIND = "discharge"
ESCORT = "discharge-escort-confirmed"


def discharge_identity(ctx: MappingContext, encounter_id: str) -> identity.Identity:
    return identity.identity(ctx, "Observation", KIND, encounter_id)


def map_discharge(record: Discharge, scope: EncounterScope, ctx: MappingContext) -> Resource:
    out = resource(discharge_identity(ctx, scope.encounter_id), ctx)
    out["status"] = "final"
    out["code"] = term(TABLE, "discharge-readiness", ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["effectiveDateTime"] = fhir_datetime(record.fit_to_leave_at)
    if record.discharged_by is not None:
        out["performer"] = [practitioner_ref(record.discharged_by, scope, ctx)]
    out["valueBoolean"] = True
    components: list[JsonValue] = [
        {"code": term(TABLE, ESCORT, ctx), "valueBoolean": record.escort_confirmed}
    ]
    components.extend(
        {"code": term(TABLE, f"instruction-{given}", ctx), "valueBoolean": True}
        for given in record.instructions_given
    )
    out["component"] = components
    return out


def unmap_discharge(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> JsonObject | None:
    found = by_identity(resources, discharge_identity(ctx, scope.encounter_id))
    if found is None:
        return None
    escort: JsonValue = None
    given: list[JsonValue] = []
    for component in objs(found.get("component")):
        key = coding_key(TABLE, component.get("code"), ctx)
        if key == ESCORT:
            escort = component.get("valueBoolean")
        elif key is not None and key.startswith("instruction-"):
            given.append(key.removeprefix("instruction-"))
    performers = objs(found.get("performer"))
    return {
        "fit_to_leave_at": found.get("effectiveDateTime"),
        "escort_confirmed": escort,
        "instructions_given": given,
        "discharged_by": provider_id_of(performers[0], resources, ctx) if performers else None,
    }
