"""The interaction screen: a DetectedIssue per ketamine interaction class on the list.

Every class of terminology 4b interacts with the ketamine (or esketamine) session
itself, so each issue implicates the patient's medications of that class and, when
the encounter has one, the session's MedicationAdministration (its MedicationRequest
when the session never started, as the infusion mapper then writes no administration).
Class membership is by RxNorm ingredient (`interaction_classes.csv`); what each class
means and how severe it is lives in `interaction_alerts.csv`, so a clinician can
change either without touching code. Every medication the patient takes or may take is
screened, held ones too (a hold is the mitigation); a stopped one is not: it no longer
raises an alert (`ehr_screen.py` screens what the EHR lists the same way).

These issues are derived data: the reverse mapping does not read them.
"""

from __future__ import annotations

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import concept, fhir_datetime, resource
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import MedicationRecord, MedicationReview
from mappings.jsontypes import JsonValue, Resource
from mappings.medication_review import refs
from mappings.medication_review.codes import ingredient_codes, rxnorm_system

CLASSES = "interaction_classes"
ALERTS = "interaction_alerts"
STOPPED = "stopped"


def interaction_classes(med: MedicationRecord) -> list[str]:
    """The interaction classes a medication belongs to, by its ingredient codes."""
    return classes_of(med.name, med.rxnorm)


def classes_of(name: str, rxnorm: str | None) -> list[str]:
    """The interaction classes of a drug named `name` (RxNorm `rxnorm`, if known)."""
    found: list[str] = []
    for code in ingredient_codes(name, rxnorm):
        key = terminology.key_for(CLASSES, rxnorm_system(), code)
        if key is not None and key not in found:
            found.append(key)
    return found


def map_interactions(
    record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    """One DetectedIssue per class present, in the table's order of classes."""
    members: dict[str, list[int]] = {}
    for position, med in enumerate(record.medications, start=1):
        if med.status == STOPPED:
            continue  # no longer taken: no longer an interaction
        for key in interaction_classes(med):
            members.setdefault(key, []).append(position)
    return [
        _issue(key, members[key], record, scope, ctx)
        for key in terminology.table(CLASSES)
        if key in members
    ]


def _issue(
    key: str,
    positions: list[int],
    record: MedicationReview,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    out = resource(refs.interaction(ctx, refs.review_key(record, scope, ctx), key), ctx)
    out["status"] = "final"
    alert = terminology.code(ALERTS, f"class-{key}")
    out["code"] = concept([terminology.code(ALERTS, "drug-interaction"), alert], ctx)
    out["severity"] = terminology.code(ALERTS, f"severity-{key}").code
    out["patient"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["identifiedDateTime"] = fhir_datetime(record.reviewed_at)
    out["author"] = identity.device(ctx).ref(ctx.adapter_name)
    out["implicated"] = _implicated(positions, record, scope, ctx)
    names = ", ".join(record.medications[p - 1].name for p in positions)
    out["detail"] = f"{alert.display}. Implicated: {names}."
    return out


def _implicated(
    positions: list[int], record: MedicationReview, scope: EncounterScope, ctx: MappingContext
) -> list[JsonValue]:
    review_key = refs.review_key(record, scope, ctx)
    out: list[JsonValue] = [refs.statement(ctx, review_key, p).ref() for p in positions]
    infusion, key = scope.infusion, scope.infusion_key(ctx)
    if infusion is not None and key is not None:
        # The administration exists only once the session started; else the order does.
        session = (
            identity.infusion_administration(ctx, key)
            if infusion.start is not None
            else identity.infusion_request(ctx, key)
        )
        out.append(session.ref())
    return out
