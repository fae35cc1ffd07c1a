"""The infusion session as FHIR R4 resources, and back (terminology section 2).

    Procedure                  the session: status (+reason), period, who administered
                               and who monitored, notes, recovery end (extension);
                               `usedCode` the drug (no "ketamine therapy" concept exists)
    MedicationRequest          the order: drug, route, mg/kg and mg, dosing weight
    Medication                 the product given: RxNorm + NDC, lot, expiry   (product.py)
    MedicationAdministration   the (es)ketamine given, `partOf` the Procedure (when started)
    MedicationAdministration   one per adjunct drug                  (medication.py)
    AdverseEvent               one per adverse event                 (events.py)
    DetectedIssue              one per protocol rule needing an eye  (protocol_issues.py)

The Procedure is the anchor: the reverse mapping finds it by identifier, then its
parts by theirs. `reasonReference` to the indication is left out: the scope does not
say whether the encounter has one, and a reference to a missing Condition would
break the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import extension, fhir_datetime, period, resource, term
from mappings.common.lookup import (
    by_identity,
    coding_key,
    ext_value,
    has_identifier,
    identifier_value,
    obj,
    objs,
    str_field,
)
from mappings.common.narrative import with_narratives
from mappings.common.people import practitioner_ref, provider_id_of
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.infusion.common import procedure_key
from mappings.infusion.events import map_adverse_events, unmap_adverse_events
from mappings.infusion.medication import (
    map_adjuncts,
    map_administration,
    map_request,
    unmap_adjuncts,
    unmap_request,
)
from mappings.infusion.product import map_product, unmap_product
from mappings.infusion.protocol_issues import map_protocol_issues
from mappings.jsontypes import JsonObject, JsonValue, Resource

TABLE = "infusion_procedures"
RECOVERY_END = "recovery-end"
NO_ADJUNCTS = "no-adjunct-medications"
NO_ADVERSE_EVENTS = "no-adverse-events"
PROCEDURE_STATUS = {"completed": "completed", "stopped": "stopped", "not_done": "not-done"}
RECORD_STATUS = {fhir: ours for ours, fhir in PROCEDURE_STATUS.items()}
PERFORMER_FIELDS = {
    "performer-administered": "administered_by",
    "performer-monitored": "monitored_by",
}


def map_infusion(
    record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    """Procedure, MedicationRequest, the MedicationAdministrations and AdverseEvents."""
    key = procedure_key(record, scope, ctx)
    product = map_product(record, key, ctx)
    out = [_procedure(record, scope, ctx), map_request(record, scope, ctx)]
    if product is not None:
        out.append(product)
    administration = map_administration(record, scope, ctx)
    suspect = identity.infusion_procedure(ctx, key)
    if administration is not None:
        out.append(administration)
        suspect = identity.infusion_administration(ctx, key)
    out.extend(map_adjuncts(record, scope, ctx))
    out.extend(map_adverse_events(record, suspect, scope, ctx))
    out.extend(map_protocol_issues(record, key, scope, ctx))
    return with_narratives(out)


def _procedure(record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext) -> Resource:
    out = resource(identity.infusion_procedure(ctx, procedure_key(record, scope, ctx)), ctx)
    extensions = _extensions(record, ctx)
    if extensions:
        out["extension"] = extensions
    out["status"] = PROCEDURE_STATUS[record.status]
    if record.status_reason is not None:
        out["statusReason"] = {"text": record.status_reason}
    out["code"] = term(TABLE, f"procedure-{record.route}", ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    if record.start is not None or record.end is not None:
        out["performedPeriod"] = period(record.start, record.end)
    performers = _performers(record, scope, ctx)
    if performers:
        out["performer"] = performers
    if record.notes is not None:
        out["note"] = [{"text": record.notes}]
    out["usedCode"] = [term("drugs", record.medication, ctx)]
    return out


def _extensions(record: InfusionProcedure, ctx: MappingContext) -> list[JsonValue]:
    """Recovery end, and the clinic's explicit "none" for empty lists.

    An empty list ("no adverse events") is a statement; an absent one is not, so
    the two must come back apart.
    """
    out: list[JsonValue] = []
    if record.recovery_end is not None:
        when = fhir_datetime(record.recovery_end)
        out.append(extension(ctx, RECOVERY_END, valueDateTime=when))
    if record.adjunct_medications == []:
        out.append(extension(ctx, NO_ADJUNCTS, valueBoolean=True))
    if record.adverse_events == []:
        out.append(extension(ctx, NO_ADVERSE_EVENTS, valueBoolean=True))
    return out


def _performers(
    record: InfusionProcedure, scope: EncounterScope, ctx: MappingContext
) -> list[JsonValue]:
    staff = (
        ("performer-administered", record.administered_by),
        ("performer-monitored", record.monitored_by),
    )
    return [
        {"function": term(TABLE, key, ctx), "actor": practitioner_ref(provider_id, scope, ctx)}
        for key, provider_id in staff
        if provider_id is not None
    ]


def unmap_infusion(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> InfusionProcedure | None:
    """The infusion of this encounter, or None if its Procedure is not among `resources`."""
    procedure = _find_procedure(resources, scope, ctx)
    if procedure is None:
        return None
    key = identifier_value(procedure, identity.system(ctx, "infusion"))
    if key is None:
        return None
    request = by_identity(resources, identity.infusion_request(ctx, key))
    document: JsonObject = {
        "procedure_id": identity.record_id_of(key),
        **_unmap_procedure(procedure, resources, ctx),
        **unmap_request(request, ctx),
        "adjunct_medications": _listed(
            unmap_adjuncts(resources, key, ctx), procedure, NO_ADJUNCTS, ctx
        ),
        "adverse_events": _listed(
            unmap_adverse_events(resources, key, ctx), procedure, NO_ADVERSE_EVENTS, ctx
        ),
        "drug_product": unmap_product(resources, key, ctx),
    }
    return InfusionProcedure.model_validate(document)


def _find_procedure(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> Resource | None:
    system = identity.system(ctx, "infusion")
    return next(
        (
            r
            for r in resources
            if r.get("resourceType") == "Procedure"
            and has_identifier(r, system)
            and scope.holds(r, resources, ctx) is not False
        ),
        None,
    )


def _unmap_procedure(
    procedure: Resource, resources: Sequence[Resource], ctx: MappingContext
) -> JsonObject:
    span = obj(procedure.get("performedPeriod"))
    notes = objs(procedure.get("note"))
    status = procedure.get("status")
    out: JsonObject = {
        "status": RECORD_STATUS.get(status) if isinstance(status, str) else None,
        "status_reason": str_field(obj(procedure.get("statusReason")), "text"),
        "start": span.get("start"),
        "end": span.get("end"),
        "recovery_end": ext_value(procedure, ctx.extension_url(RECOVERY_END), "valueDateTime"),
        "administered_by": None,
        "monitored_by": None,
        "notes": str_field(notes[0], "text") if notes else None,
    }
    for performer in objs(procedure.get("performer")):
        field = PERFORMER_FIELDS.get(coding_key(TABLE, performer.get("function"), ctx) or "")
        if field is not None:
            out[field] = provider_id_of(performer.get("actor"), resources, ctx)
    return out


def _listed(
    found: list[JsonObject], procedure: Resource, none_extension: str, ctx: MappingContext
) -> list[JsonValue] | None:
    """The parts found; an empty list if the clinic said "none"; else absent."""
    if found:
        return list(found)
    said_none = ext_value(procedure, ctx.extension_url(none_extension), "valueBoolean")
    return [] if said_none is True else None
