"""The Spravato REMS Patient Monitoring record of an esketamine session: our Questionnaire of
the form's items, and the session's QuestionnaireResponse, and back.

The form asks for the dose and its time, the blood pressure before and after the dose, the
sedation and dissociation assessments with their times, the time the patient was ready to
leave and the adverse events. All but the assessments are already in the encounter's
records (the infusion, its vital signs, the discharge): the response is made from the whole
encounter, so it is made from an encounter document only, never from one record sent
alone. An item whose record is missing is left out and the response is `in-progress`;
with every required item it is `completed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mappings.common import identity
from mappings.common.builders import fhir_date, fhir_datetime, quantity, resource, term
from mappings.common.lookup import by_identity, objs
from mappings.common.people import practitioner_ref
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission, InfusionProcedure, VitalsObservation
from mappings.jsontypes import JsonObject, JsonValue, Resource

FORM = "spravato-rems-patient-monitoring"
KIND = "rems-monitoring"
BEFORE_PHASES = ("baseline", "pre_infusion")


@dataclass(frozen=True)
class Item:
    """One item of the form: its linkId, question, R4 item type and what it may hold."""

    link_id: str
    text: str
    type: str
    required: bool = True
    repeats: bool = False
    unit: str | None = None
    items: tuple[Item, ...] = ()
    enable_when: tuple[str, bool] | None = None


def _bp(prefix: str, when: str) -> Item:
    return Item(
        prefix,
        f"Blood pressure {when} the dose",
        "group",
        items=(
            Item(f"{prefix}-time", "Time measured", "dateTime"),
            Item(f"{prefix}-systolic", "Systolic (mmHg)", "quantity", unit="mm[Hg]"),
            Item(f"{prefix}-diastolic", "Diastolic (mmHg)", "quantity", unit="mm[Hg]"),
        ),
    )


ITEMS: tuple[Item, ...] = (
    Item("session-date", "Date of the treatment session", "date"),
    Item("dose", "Dose of esketamine administered (mg)", "quantity", unit="mg"),
    Item("dose-time", "Time of the dose (first device)", "dateTime"),
    _bp("bp-before", "before"),
    Item(
        "assessment",
        "Sedation and dissociation assessment",
        "group",
        repeats=True,
        items=(
            Item("assessment-time", "Time assessed", "dateTime"),
            Item("sedation", "Sedation present", "boolean"),
            Item("dissociation", "Dissociation present", "boolean"),
        ),
    ),
    _bp("bp-after", "after"),
    Item("ready-to-leave", "Time the patient was ready to leave", "dateTime"),
    Item("adverse-events", "Adverse events during the session", "boolean"),
    Item(
        "adverse-event-description",
        "Adverse events observed",
        "string",
        required=False,
        repeats=True,
        enable_when=("adverse-events", True),
    ),
)


def questionnaire_url(ctx: MappingContext) -> str:
    return f"{ctx.namespace}/Questionnaire/{FORM}"


def questionnaire_identity(ctx: MappingContext) -> identity.Identity:
    return identity.identity(ctx, "Questionnaire", "questionnaire", ctx.tenant, FORM)


def response_identity(ctx: MappingContext, encounter_id: str) -> identity.Identity:
    return identity.identity(ctx, "QuestionnaireResponse", KIND, encounter_id)


def map_questionnaire(ctx: MappingContext) -> Resource:
    """Our Questionnaire of the REMS form (the same for every session of the clinic)."""
    out = resource(questionnaire_identity(ctx), ctx)
    out["url"] = questionnaire_url(ctx)
    out["version"] = "1"
    out["name"] = "SpravatoRemsPatientMonitoring"
    out["title"] = "Spravato REMS Patient Monitoring Form"
    out["status"] = "active"
    out["subjectType"] = ["Patient"]
    out["publisher"] = ctx.clinic_name
    out["code"] = term("care", "rems-form", ctx)["coding"]
    out["item"] = [_question(item) for item in ITEMS]
    return out


def _question(item: Item) -> JsonObject:
    out: JsonObject = {"linkId": item.link_id, "text": item.text, "type": item.type}
    if item.enable_when is not None:
        link, answer = item.enable_when
        out["enableWhen"] = [{"question": link, "operator": "=", "answerBoolean": answer}]
    out["required"] = item.required
    if item.repeats:
        out["repeats"] = True
    if item.items:
        out["item"] = [_question(child) for child in item.items]
    return out


def map_rems_response(
    sub: EncounterSubmission, scope: EncounterScope, ctx: MappingContext
) -> Resource | None:
    """The session's filled-in form, or None when the encounter has no esketamine dose."""
    infusion = sub.infusion
    if infusion is None or infusion.medication != "esketamine" or infusion.start is None:
        return None
    answers, groups = _answers(sub, infusion), _groups(sub)
    ident = response_identity(ctx, sub.encounter_id)
    out = resource(ident, ctx)
    out["identifier"] = ident.identifier()  # 0..1 in R4, not a list
    out["questionnaire"] = questionnaire_url(ctx)
    out["status"] = "completed" if _complete(ITEMS, answers, groups) else "in-progress"
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, sub.encounter_id).ref()
    out["authored"] = fhir_datetime(_authored(sub, infusion))
    if infusion.monitored_by is not None:
        out["author"] = practitioner_ref(infusion.monitored_by, scope, ctx)
    out["item"] = _filled(ITEMS, answers, groups)
    return out


Answers = dict[str, list[JsonValue]]
Groups = dict[str, list[Answers]]


def _groups(sub: EncounterSubmission) -> Groups:
    """The answers of each repeating group: one per REMS assessment."""
    checks = sub.rems_monitoring.assessments if sub.rems_monitoring is not None else ()
    return {
        "assessment": [
            {
                "assessment-time": [fhir_datetime(check.assessed_at)],
                "sedation": [check.sedation],
                "dissociation": [check.dissociation],
            }
            for check in checks
        ]
    }


def _answers(sub: EncounterSubmission, infusion: InfusionProcedure) -> Answers:
    start = infusion.start
    assert start is not None
    out: Answers = {"session-date": [fhir_date(start.date())], "dose-time": [fhir_datetime(start)]}
    if infusion.status == "completed":
        out["dose"] = [quantity(infusion.total_dose_mg, "mg")]
    readings = [v for v in sub.vitals or () if v.systolic is not None and v.diastolic is not None]
    before = [v for v in readings if v.taken_at <= start and v.phase in BEFORE_PHASES]
    after = [v for v in readings if v.taken_at > start and v.phase not in BEFORE_PHASES]
    if before:
        out.update(_bp_answers("bp-before", max(before, key=lambda v: v.taken_at)))
    if after:
        out.update(_bp_answers("bp-after", min(after, key=lambda v: v.taken_at)))
    ready = sub.discharge.fit_to_leave_at if sub.discharge is not None else infusion.recovery_end
    if ready is not None:
        out["ready-to-leave"] = [fhir_datetime(ready)]
    if infusion.adverse_events is not None:
        out["adverse-events"] = [bool(infusion.adverse_events)]
        out["adverse-event-description"] = [
            f"{event.text or event.type.replace('_', ' ')} ({event.severity})"
            for event in infusion.adverse_events
        ]
    return out


def _bp_answers(prefix: str, reading: VitalsObservation) -> Answers:
    pressures = (reading.systolic, reading.diastolic)
    return {
        f"{prefix}-time": [fhir_datetime(reading.taken_at)],
        f"{prefix}-systolic": [_mmhg(pressures[0].value)] if pressures[0] else [],
        f"{prefix}-diastolic": [_mmhg(pressures[1].value)] if pressures[1] else [],
    }


def _mmhg(value: float) -> JsonValue:
    return quantity(value, "mm[Hg]", "mmHg")


def _authored(sub: EncounterSubmission, infusion: InfusionProcedure) -> datetime:
    times = [t for t in (infusion.start, infusion.end, infusion.recovery_end) if t is not None]
    if sub.discharge is not None:
        times.append(sub.discharge.fit_to_leave_at)
    if sub.rems_monitoring is not None:
        times.extend(check.assessed_at for check in sub.rems_monitoring.assessments)
    return max(times)


def _complete(items: Sequence[Item], answers: Answers, groups: Groups) -> bool:
    for item in items:
        if item.type == "group" and item.repeats:
            if item.required and not groups.get(item.link_id):
                return False
        elif item.type == "group":
            if not _complete(item.items, answers, groups):
                return False
        elif item.required and not answers.get(item.link_id):
            return False
    return True


def _filled(items: Sequence[Item], answers: Answers, groups: Groups) -> list[JsonValue]:
    out: list[JsonValue] = []
    for item in items:
        if item.type == "group" and item.repeats:
            out.extend(_group(item, given) for given in groups.get(item.link_id, ()))
        elif item.type == "group":
            children = _filled(item.items, answers, groups)
            if children:
                out.append({"linkId": item.link_id, "text": item.text, "item": children})
        elif answers.get(item.link_id):
            values = answers[item.link_id]
            out.append(
                {
                    "linkId": item.link_id,
                    "text": item.text,
                    "answer": [_answer(item, v) for v in values],
                }
            )
    return out


def _group(item: Item, given: Answers) -> JsonObject:
    return {"linkId": item.link_id, "text": item.text, "item": _filled(item.items, given, {})}


def _answer(item: Item, value: JsonValue) -> JsonObject:
    key = {
        "date": "valueDate",
        "dateTime": "valueDateTime",
        "quantity": "valueQuantity",
        "boolean": "valueBoolean",
        "string": "valueString",
    }[item.type]
    return {key: value}


def unmap_rems(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> JsonObject | None:
    """The REMS monitoring fields of the contract (the assessments) from the response."""
    found = by_identity(resources, response_identity(ctx, scope.encounter_id))
    if found is None:
        return None
    checks: list[JsonValue] = []
    for group in objs(found.get("item")):
        if group.get("linkId") != "assessment":
            continue
        values: JsonObject = {}
        for child in objs(group.get("item")):
            answer = next(iter(objs(child.get("answer"))), {})
            values[str(child.get("linkId"))] = next(iter(answer.values()), None)
        checks.append(
            {
                "assessed_at": values.get("assessment-time"),
                "sedation": values.get("sedation"),
                "dissociation": values.get("dissociation"),
            }
        )
    return {"assessments": checks} if checks else None
