"""The drugs of an infusion: the order, its administration, and adjunct drugs, and back.

- MedicationRequest (the order, always present, even for an infusion not done):
  drug, route, the weight-based dose (`doseAndRate` ordered mg/kg + calculated mg,
  terminology 2b) and the dosing weight (clinic extension, original unit kept).
  It is the reverse mapping's source for those fields.
- MedicationAdministration of the (es)ketamine, when the infusion has a start
  (R4 requires `effective[x]`, and we never invent a time). Its `dosage` (route and
  the total dose) only when completed: a stopped infusion gave less than ordered, by
  an amount the record does not say.
- One MedicationAdministration per adjunct drug, `partOf` the Procedure.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import coding, extension, fhir_datetime, period, resource, term
from mappings.common.lookup import coding_key, ext_value, obj, objs, str_field
from mappings.common.people import practitioner_ref
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import AdjunctMedication, InfusionProcedure
from mappings.infusion.common import (
    ADJUNCT_KIND,
    dose_quantity,
    dose_text,
    dose_unit,
    part_identity,
    parts_of,
    procedure_key,
)
from mappings.infusion.product import product_identity
from mappings.jsontypes import JsonObject, JsonValue, Resource

TABLE = "infusion_procedures"
DOSING_WEIGHT = "dosing-weight"
REQUEST_STATUS = {"completed": "completed", "stopped": "stopped", "not_done": "cancelled"}
ADMINISTRATION_STATUS = {"completed": "completed", "stopped": "stopped", "not_done": "not-done"}


def map_request(record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext) -> Resource:
    out = resource(identity.infusion_request(ctx, procedure_key(record, scope, ctx)), ctx)
    if record.weight is not None:
        weight = dose_quantity(record.weight.value, record.weight.unit)
        out["extension"] = [extension(ctx, DOSING_WEIGHT, valueQuantity=weight)]
    out["status"] = REQUEST_STATUS[record.status]
    if record.status != "completed" and record.status_reason is not None:
        out["statusReason"] = {"text": record.status_reason}
    out["intent"] = "order"
    out["category"] = [term(TABLE, "request-outpatient", ctx)]
    out["medicationCodeableConcept"] = term("drugs", record.medication, ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["dosageInstruction"] = [_instruction(record, ctx)]
    return out


def _instruction(record: InfusionProcedure, ctx: MappingContext) -> JsonObject:
    doses: list[JsonValue] = []
    if record.dose_mg_per_kg is not None:
        per_kg = dose_quantity(record.dose_mg_per_kg, "mg/kg")
        doses.append({"type": term(TABLE, "dose-ordered", ctx), "doseQuantity": per_kg})
    calculated = record.dose_mg_per_kg is not None and record.weight is not None
    total_type = "dose-calculated" if calculated else "dose-ordered"
    total = dose_quantity(record.total_dose_mg, "mg")
    doses.append({"type": term(TABLE, total_type, ctx), "doseQuantity": total})
    return {
        "text": dose_text(record),
        "route": term("routes", record.route, ctx),
        "doseAndRate": doses,
    }


def map_administration(
    record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext
) -> Resource | None:
    """The (es)ketamine given, or None when the infusion never started."""
    if record.start is None:
        return None
    key = procedure_key(record, scope, ctx)
    out = resource(identity.infusion_administration(ctx, key), ctx)
    out["partOf"] = [identity.infusion_procedure(ctx, key).ref()]
    out["status"] = ADMINISTRATION_STATUS[record.status]
    if record.status != "completed" and record.status_reason is not None:
        out["statusReason"] = [{"text": record.status_reason}]
    out["category"] = term(TABLE, "administration-outpatient", ctx)
    if record.drug_product is not None:
        out["medicationReference"] = product_identity(ctx, key).ref()
    else:
        out["medicationCodeableConcept"] = term("drugs", record.medication, ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["context"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["effectivePeriod"] = period(record.start, record.end)
    if record.administered_by is not None:
        function = term(TABLE, "administration-performer", ctx)
        actor = practitioner_ref(record.administered_by, scope, ctx)
        out["performer"] = [{"function": function, "actor": actor}]
    out["request"] = identity.infusion_request(ctx, key).ref()
    if record.status == "completed":
        out["dosage"] = _dosage(record, ctx)
    return out


def _dosage(record: InfusionProcedure, ctx: MappingContext) -> JsonObject:
    """The whole dose given. A stopped or not-done administration has no dosage at all:
    R4 (mad-1) wants a dose or rate in every dosage, and how much of the order ran
    before it stopped is not in the record (the order keeps route and dose).
    """
    return {
        "text": dose_text(record),
        "route": term("routes", record.route, ctx),
        "dose": dose_quantity(record.total_dose_mg, "mg"),
    }


def map_adjuncts(
    record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    key = procedure_key(record, scope, ctx)
    return [
        _adjunct(key, index, adjunct, scope, ctx)
        for index, adjunct in enumerate(record.adjunct_medications or ())
    ]


def _adjunct(
    procedure_key: str,
    index: int,
    adjunct: AdjunctMedication,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    ident = part_identity(ctx, "MedicationAdministration", ADJUNCT_KIND, procedure_key, index)
    out = resource(ident, ctx)
    out["partOf"] = [identity.infusion_procedure(ctx, procedure_key).ref()]
    out["status"] = "completed"
    out["category"] = term(TABLE, "administration-outpatient", ctx)
    out["medicationCodeableConcept"] = _adjunct_drug(adjunct, ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["context"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["effectiveDateTime"] = fhir_datetime(adjunct.given_at)
    out["dosage"] = {
        "route": term("routes", adjunct.route, ctx),
        "dose": dose_quantity(adjunct.dose_mg, "mg"),
    }
    return out


def drug_key(name: str) -> str:
    """The drugs-table key for a drug name as a clinic may write it (`Ondansetron `)."""
    return " ".join(name.split()).casefold()


def _adjunct_drug(adjunct: AdjunctMedication, ctx: MappingContext) -> JsonObject:
    """The clinic's RxNorm code (marked `userSelected`), else the table's, else text only."""
    codings: list[JsonValue] = []
    if adjunct.rxnorm is not None:
        rxnorm = terminology.systems()["rxnorm"]
        codings.append({"system": rxnorm, "code": adjunct.rxnorm, "userSelected": True})
    elif terminology.has("drugs", drug_key(adjunct.name)):
        codings.extend(coding(c, ctx) for c in terminology.codes("drugs", drug_key(adjunct.name)))
    out: JsonObject = {"coding": codings} if codings else {}
    out["text"] = adjunct.name
    return out


def unmap_request(request: Resource | None, ctx: MappingContext) -> JsonObject:
    """The drug, route and dose fields of the record, from the order."""
    if request is None:
        return {}
    instruction = next(iter(objs(request.get("dosageInstruction"))), {})
    doses: dict[str | None, JsonValue] = {}
    for dose in objs(instruction.get("doseAndRate")):
        quantity = obj(dose.get("doseQuantity"))
        doses.setdefault(dose_unit(quantity), quantity.get("value"))
    return {
        "medication": coding_key("drugs", request.get("medicationCodeableConcept"), ctx),
        "route": coding_key("routes", instruction.get("route"), ctx),
        "weight": _unmap_weight(request, ctx),
        "dose_mg_per_kg": doses.get("mg/kg"),
        "total_dose_mg": doses.get("mg"),
    }


def _unmap_weight(request: Resource, ctx: MappingContext) -> JsonObject | None:
    weight = ext_value(request, ctx.extension_url(DOSING_WEIGHT), "valueQuantity")
    if weight is None:
        return None
    return {"value": obj(weight).get("value"), "unit": dose_unit(weight)}


def unmap_adjuncts(
    resources: Sequence[Resource], procedure_key: str, ctx: MappingContext
) -> list[JsonObject]:
    found = parts_of(resources, "MedicationAdministration", ADJUNCT_KIND, procedure_key, ctx)
    return [_unmap_adjunct(res, ctx) for res in found]


def _unmap_adjunct(res: Resource, ctx: MappingContext) -> JsonObject:
    drug = obj(res.get("medicationCodeableConcept"))
    dosage = obj(res.get("dosage"))
    rxnorm = terminology.systems()["rxnorm"]
    chosen = next(
        (
            c
            for c in objs(drug.get("coding"))
            if c.get("system") == rxnorm and c.get("userSelected") is True
        ),
        None,
    )
    return {
        "name": str_field(drug, "text"),
        "dose_mg": obj(dosage.get("dose")).get("value"),
        "route": coding_key("routes", dosage.get("route"), ctx),
        "given_at": res.get("effectiveDateTime"),
        "rxnorm": str_field(chosen, "code") if chosen is not None else None,
    }
