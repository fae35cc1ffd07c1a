"""The adverse events of an infusion as R4 AdverseEvents, and back.

Each event the clinic reports is an AdverseEvent (`actuality` actual) whose suspect is
the (es)ketamine MedicationAdministration, or the Procedure when the drug was never
started. R4 AdverseEvent has no element for the treatment given, so it travels in a
clinic extension; `outcome` is absent when the clinic does not say whether it resolved.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import extension, fhir_datetime, resource, term
from mappings.common.identity import Identity
from mappings.common.lookup import coding_key, ext_value, obj, str_field
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import AdverseEventRecord, InfusionProcedure
from mappings.infusion.common import ADVERSE_EVENT_KIND, part_identity, parts_of, procedure_key
from mappings.jsontypes import JsonObject, Resource

EVENTS = "adverse_events"
GRADING = "adverse_event_grading"
TREATMENT = "adverse-event-treatment"
OUTCOME_KEYS = {True: "outcome-resolved", False: "outcome-ongoing"}
RESOLVED = {key: resolved for resolved, key in OUTCOME_KEYS.items()}
SEVERITY_PREFIX = "severity-"


def map_adverse_events(
    record: InfusionProcedure, suspect: Identity, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    key = procedure_key(record, scope, ctx)
    return [
        _adverse_event(event, _identity(key, index, ctx), suspect, scope, ctx)
        for index, event in enumerate(record.adverse_events or ())
    ]


def _identity(procedure_key: str, index: int, ctx: MappingContext) -> Identity:
    return part_identity(ctx, "AdverseEvent", ADVERSE_EVENT_KIND, procedure_key, index)


def _adverse_event(
    event: AdverseEventRecord,
    ident: Identity,
    suspect: Identity,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    out = resource(ident, ctx)
    out["identifier"] = ident.identifier()  # R4 AdverseEvent.identifier is 0..1, not a list
    if event.treatment is not None:
        out["extension"] = [extension(ctx, TREATMENT, valueString=event.treatment)]
    out["actuality"] = "actual"
    out["event"] = term(EVENTS, event.type, ctx, event.text)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    if event.onset is not None:
        out["date"] = fhir_datetime(event.onset)
    out["severity"] = term(GRADING, SEVERITY_PREFIX + event.severity, ctx)
    if event.resolved is not None:
        out["outcome"] = term(GRADING, OUTCOME_KEYS[event.resolved], ctx)
    out["suspectEntity"] = [{"instance": suspect.ref()}]
    return out


def unmap_adverse_events(
    resources: Sequence[Resource], procedure_key: str, ctx: MappingContext
) -> list[JsonObject]:
    found = parts_of(resources, "AdverseEvent", ADVERSE_EVENT_KIND, procedure_key, ctx)
    return [_unmap_adverse_event(res, ctx) for res in found]


def _unmap_adverse_event(res: Resource, ctx: MappingContext) -> JsonObject:
    severity = coding_key(GRADING, res.get("severity"), ctx)
    outcome = coding_key(GRADING, res.get("outcome"), ctx)
    return {
        "type": coding_key(EVENTS, res.get("event"), ctx),
        "text": str_field(obj(res.get("event")), "text"),
        "severity": severity.removeprefix(SEVERITY_PREFIX) if severity is not None else None,
        "onset": res.get("date"),
        "resolved": RESOLVED.get(outcome) if outcome is not None else None,
        "treatment": ext_value(res, ctx.extension_url(TREATMENT), "valueString"),
    }
