"""Positive checklist answers as the patient's Conditions, and a prior ketamine reaction
as an AllergyIntolerance.

Only what is present becomes a resource: a "no" stays an answer in the checklist
response (terminology 1d: no refuted Conditions). The encounter's indication is
mapped with the encounter, not here.
"""

from __future__ import annotations

from mappings import terminology
from mappings.common.builders import term
from mappings.contract import IntakeScreening
from mappings.intake.base import CHECKLIST, IntakeFrame
from mappings.intake.responses import CONTRAINDICATION_KEYS
from mappings.jsontypes import JsonObject, Resource

TABLE = "contraindications"
KETAMINE_REACTION = "prior_ketamine_adverse_reaction"
BIPOLAR_DISORDER = "bipolar_disorder"


def positive_contraindications(record: IntakeScreening) -> list[str]:
    """The contraindication keys answered yes, in checklist order."""
    return [key for key in CONTRAINDICATION_KEYS if getattr(record.contraindications, key)]


def condition_keys(record: IntakeScreening) -> list[str]:
    """Findings that are conditions of the patient: contraindications and history items."""
    keys = [key for key in positive_contraindications(record) if key != KETAMINE_REACTION]
    if record.bipolar_disorder:
        keys.append(BIPOLAR_DISORDER)
    return keys


def map_findings(frame: IntakeFrame) -> list[Resource]:
    out = [_condition(frame, key) for key in condition_keys(frame.record)]
    if frame.record.contraindications.prior_ketamine_adverse_reaction:
        out.append(_ketamine_reaction(frame))
    return out


def finding_ref(frame: IntakeFrame, key: str) -> JsonObject:
    """The resource a positive finding became: its Condition, or the AllergyIntolerance."""
    resource_type = "AllergyIntolerance" if key == KETAMINE_REACTION else "Condition"
    return frame.identity(resource_type, key).ref()


def finding_text(key: str) -> str:
    """The clinic's own name of a finding (the standard codes may be broader)."""
    local = (c for c in terminology.codes(TABLE, key) if c.system == terminology.CLINIC_SYSTEM)
    return next(local, terminology.code(TABLE, key)).display


def _condition(frame: IntakeFrame, key: str) -> Resource:
    ctx = frame.ctx
    status = f"clinical-status-{key}"
    out = frame.head("Condition", key)
    out["clinicalStatus"] = term(
        TABLE, status if terminology.has(TABLE, status) else "clinical-active", ctx
    )
    out["verificationStatus"] = term(TABLE, "verification-confirmed", ctx)
    out["category"] = [term(TABLE, "category-problem-list-item", ctx)]
    out["code"] = term(TABLE, key, ctx, text=finding_text(key))
    out["subject"] = frame.patient
    out["encounter"] = frame.encounter
    out["recordedDate"] = frame.completed
    out["evidence"] = [{"detail": [frame.response_ref(CHECKLIST)]}]
    return out


def _ketamine_reaction(frame: IntakeFrame) -> Resource:
    """Ketamine as the substance; allergy or intolerance and the reaction are not told."""
    ctx = frame.ctx
    out = frame.head("AllergyIntolerance", KETAMINE_REACTION)
    out["clinicalStatus"] = term(TABLE, "allergy-clinical-active", ctx)
    out["verificationStatus"] = term(TABLE, "allergy-verification-confirmed", ctx)
    out["category"] = ["medication"]
    out["code"] = term(TABLE, KETAMINE_REACTION, ctx)
    out["patient"] = frame.patient
    out["encounter"] = frame.encounter
    out["recordedDate"] = frame.completed
    return out
