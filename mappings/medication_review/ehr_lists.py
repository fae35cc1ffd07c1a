"""Medication and allergy list entries as an EHR wrote them, read as the contract's items.

The clinic's own statements and allergies come back through the review's reverse mapping
(`statements.py`, `allergies.py`), which reads the identifiers and extensions we wrote.
What an EHR wrote (a MedicationStatement or MedicationRequest a psychiatrist added, an
AllergyIntolerance) carries none of them, and an EHR's edit of one of ours may have changed
what they describe; both are read here from plain R4 elements, whoever wrote them:

    name        medicationCodeableConcept.text, else its first coding's display,
                else medicationReference.display
    rxnorm      the RxNorm coding (the `userSelected` one first)
    status      from the R4 status (medication-statement-status, medicationrequest-status):
                active -> active; on-hold, intended (MedicationStatement), draft
                (MedicationRequest) -> on_hold (not taken now, may be); stopped, completed,
                not-taken, cancelled, entered-in-error -> stopped; unknown, missing or
                anything else -> active, since a drug the clinic cannot rule out must
                still be screened. `fhir_status` keeps the code itself.
    dose        dosage[0].text (MedicationRequest: dosageInstruction[0].text), else the
                first doseQuantity as "<value> <unit>"
    frequency   the timing's code text (or its first coding's display)
    instruction none: only the clinic gives an infusion-day instruction
"""

from __future__ import annotations

from mappings.common.lookup import coding_key, obj, objs, str_field
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.medication_review.codes import rxnorm_system
from mappings.medication_review.refs import first
from mappings.medication_review.statements import status_for_day, unmap_statement

REVIEW_TABLE = "medication_review"
ACTIVE = "active"
ON_HOLD = "on_hold"
STOPPED = "stopped"
_STATUS_OF_FHIR = {
    "active": ACTIVE,
    "on-hold": ON_HOLD,
    "intended": ON_HOLD,
    "draft": ON_HOLD,
    "stopped": STOPPED,
    "completed": STOPPED,
    "not-taken": STOPPED,
    "cancelled": STOPPED,
    "entered-in-error": STOPPED,
}
# AllergyIntolerance codes saying the entry is no (longer an) allergy (R4 value sets
# allergyintolerance-verification and allergyintolerance-clinical).
NOT_AN_ALLERGY = frozenset({"refuted", "entered-in-error", "inactive", "resolved"})
_SEVERITIES = frozenset({"mild", "moderate", "severe"})


def ehr_medication(res: Resource) -> JsonObject:
    """A MedicationStatement or MedicationRequest of any writer, as a contract medication."""
    dosage = first(res.get("dosage")) or first(res.get("dosageInstruction"))
    status = str_field(res, "status")
    return {
        "name": _drug_name(res),
        "status": _STATUS_OF_FHIR.get(status or "", ACTIVE),
        "rxnorm": rxnorm_code(res.get("medicationCodeableConcept")),
        "dose": str_field(dosage, "text") or _dose_quantity(dosage),
        "frequency": concept_text(obj(dosage.get("timing")).get("code")),
        "instruction": None,
        "note": str_field(first(res.get("note")), "text"),
        "fhir_status": status,
    }


def edited_medication(res: Resource, ctx: MappingContext) -> JsonObject:
    """One of our statements after the EHR edited it: the EHR's elements, with the clinic's
    instruction, and the clinic's status while the EHR's status still agrees with it."""
    ours = unmap_statement(res, ctx)
    theirs = ehr_medication(res)
    status, instruction = ours.get("status"), ours.get("instruction")
    agrees = (
        isinstance(status, str)
        and isinstance(instruction, str)
        and status_for_day(status, instruction) == theirs["fhir_status"]
    )
    if agrees:
        theirs["status"] = status
    return theirs | {"instruction": instruction}


def ehr_allergy(res: Resource) -> JsonObject:
    """An AllergyIntolerance of any writer, as a contract allergy."""
    reaction = first(res.get("reaction"))
    severity = str_field(reaction, "severity")
    return {
        "substance": concept_text(res.get("code")),
        "reaction": concept_text(first(reaction.get("manifestation"))),
        "severity": severity if severity in _SEVERITIES else None,
        "rxnorm": rxnorm_code(res.get("code")),
    }


def is_current_allergy(res: Resource) -> bool:
    """False when the EHR marked it refuted, entered in error, inactive or resolved."""
    codes = {
        str_field(c, "code")
        for element in ("verificationStatus", "clinicalStatus")
        for c in objs(obj(res.get(element)).get("coding"))
    }
    return codes.isdisjoint(NOT_AN_ALLERGY)


def is_no_known_allergy(res: Resource, ctx: MappingContext) -> bool:
    """True for a "no known allergy" statement (the code our terminology table names)."""
    return coding_key(REVIEW_TABLE, res.get("code"), ctx) == "no-known-allergy"


def rxnorm_code(concept: JsonValue) -> str | None:
    codings = [c for c in objs(obj(concept).get("coding")) if c.get("system") == rxnorm_system()]
    codings.sort(key=lambda c: c.get("userSelected") is not True)
    return str_field(codings[0], "code") if codings else None


def concept_text(concept: JsonValue) -> str | None:
    """A CodeableConcept's text, else its first coding's display."""
    found = obj(concept)
    return str_field(found, "text") or str_field(first(found.get("coding")), "display")


def _drug_name(res: Resource) -> str | None:
    named = concept_text(res.get("medicationCodeableConcept"))
    return named or str_field(obj(res.get("medicationReference")), "display")


def _dose_quantity(dosage: JsonObject) -> str | None:
    quantity = obj(first(dosage.get("doseAndRate")).get("doseQuantity"))
    value, unit = quantity.get("value"), str_field(quantity, "unit") or ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    shown = str(int(value)) if float(value).is_integer() else str(value)
    return f"{shown} {unit}".strip()
