"""One MedicationStatement per reviewed medication, and back.

Base R4 MedicationStatement (terminology 4a): US Core does not profile it, and a
reconciliation of home medications is a statement of use, not an order.
`status` is what is in effect for the infusion day: an instruction to stop or hold
overrides an active medication. Since that status alone cannot say which of the two
contract fields set it, both travel in clinic extensions (and a hold or stop
instruction also as a coded `statusReason`, for readers that ignore extensions).
The dose and the frequency stay apart: `dosage.text` is the dose as sent,
`dosage.timing.code.text` the frequency as sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import extension, fhir_datetime, resource, term
from mappings.common.lookup import by_position, coding_key, ext_value, obj, str_field
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import MedicationRecord, MedicationReview
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.medication_review import refs
from mappings.medication_review.codes import drug_concept, sent_rxnorm

TABLE = "medication_review"
STATUS_EXTENSION = "medication-review-status"
INSTRUCTION_EXTENSION = "infusion-day-instruction"
INSTRUCTION_PREFIX = "instruction-"
DEFAULT_INSTRUCTION = "continue"
_STATUS_FROM_FHIR = {"active": "active", "on-hold": "on_hold", "stopped": "stopped"}


def statement_status(med: MedicationRecord) -> str:
    """The R4 status in effect for the infusion day."""
    return status_for_day(med.status, med.instruction)


def status_for_day(status: str, instruction: str) -> str:
    """The R4 status that a contract status and an infusion-day instruction give together;
    also how a reader tells whether an EHR's edit of the status left our extensions stale."""
    if status == "stopped" or instruction == "stop":
        return "stopped"
    if status == "on_hold" or instruction == "hold":
        return "on-hold"
    return "active"


def map_statements(
    record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    return [
        _statement(med, position, record, scope, ctx)
        for position, med in enumerate(record.medications, start=1)
    ]


def _statement(
    med: MedicationRecord,
    position: int,
    record: MedicationReview,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    out = resource(refs.statement(ctx, refs.review_key(record, scope, ctx), position), ctx)
    out["extension"] = [
        extension(ctx, STATUS_EXTENSION, valueCode=med.status),
        extension(ctx, INSTRUCTION_EXTENSION, valueCode=med.instruction),
    ]
    out["status"] = statement_status(med)
    if med.instruction != DEFAULT_INSTRUCTION:
        out["statusReason"] = [term(TABLE, INSTRUCTION_PREFIX + med.instruction, ctx)]
    out["category"] = term(TABLE, "statement-category-community", ctx)
    out["medicationCodeableConcept"] = drug_concept(med.name, med.rxnorm, ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["context"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["dateAsserted"] = fhir_datetime(record.reviewed_at)
    source = refs.reviewer(record.reviewed_by, scope, ctx)
    if source:
        out["informationSource"] = source
    out["derivedFrom"] = [refs.review(ctx, refs.review_key(record, scope, ctx)).ref()]
    if med.note is not None:
        out["note"] = [{"text": med.note}]
    dosage = _dosage(med)
    if dosage:
        out["dosage"] = [dosage]
    return out


def _dosage(med: MedicationRecord) -> JsonObject:
    out: JsonObject = {}
    if med.dose is not None:
        out["text"] = med.dose
    if med.frequency is not None:
        out["timing"] = {"code": {"text": med.frequency}}
    return out


def unmap_statements(
    resources: Sequence[Resource], review_key: str, ctx: MappingContext
) -> list[JsonValue]:
    """The medications of the review, in the record's order, as contract JSON."""
    found = refs.parts(resources, "MedicationStatement", refs.STATEMENT_KIND, review_key, ctx)
    return [unmap_statement(res, ctx) for res in by_position(found)]


def unmap_statement(res: Resource, ctx: MappingContext) -> JsonObject:
    """One statement we wrote, as the contract's medication JSON."""
    drug = obj(res.get("medicationCodeableConcept"))
    dosage = refs.first(res.get("dosage"))
    timing_code = obj(obj(dosage.get("timing")).get("code"))
    return {
        "name": str_field(drug, "text"),
        "status": _status(res, ctx),
        "rxnorm": sent_rxnorm(drug),
        "dose": str_field(dosage, "text"),
        "frequency": str_field(timing_code, "text"),
        "instruction": _instruction(res, ctx),
        "note": str_field(refs.first(res.get("note")), "text"),
    }


def _status(res: Resource, ctx: MappingContext) -> JsonValue:
    sent = ext_value(res, ctx.extension_url(STATUS_EXTENSION), "valueCode")
    if sent is not None:
        return sent
    status = res.get("status")
    return _STATUS_FROM_FHIR.get(status) if isinstance(status, str) else None


def _instruction(res: Resource, ctx: MappingContext) -> JsonValue:
    """The extension, else the coded statusReason, else the contract's default."""
    sent = ext_value(res, ctx.extension_url(INSTRUCTION_EXTENSION), "valueCode")
    if sent is not None:
        return sent
    key = coding_key(TABLE, refs.first(res.get("statusReason")), ctx)
    if key is not None and key.startswith(INSTRUCTION_PREFIX):
        return key.removeprefix(INSTRUCTION_PREFIX)
    return DEFAULT_INSTRUCTION
