"""The treatment course as a CarePlan, and each encounter's place in it, and back.

One CarePlan per course of a patient (`course_id` is unique within the patient, so its
identifier value is `<mrn>~<course_id>`; the logical id is a hash, never the MRN):
`category` the clinic's treatment course and its phase (induction, maintenance), the
planned number of sessions in an extension. The Encounter carries the complex extension
`treatment-course-session`: the CarePlan and its session number ("session 4 of 6").
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import extension, resource, term
from mappings.common.lookup import coding_key, ext_value, obj, objs, resolve
from mappings.context import MappingContext
from mappings.contract import TreatmentCourse
from mappings.jsontypes import JsonObject, JsonValue, Resource

TABLE = "care"
KIND = "treatment-course"
PLANNED = "planned-sessions"
SESSION = "treatment-course-session"
PHASES = ("induction", "maintenance")


def course_identity(ctx: MappingContext, patient_mrn: str, course_id: str) -> identity.Identity:
    return identity.identity(ctx, "CarePlan", KIND, patient_mrn, course_id)


def map_course(course: TreatmentCourse, patient_mrn: str, ctx: MappingContext) -> Resource:
    out = resource(course_identity(ctx, patient_mrn, course.course_id), ctx)
    if course.planned_sessions is not None:
        out["extension"] = [extension(ctx, PLANNED, valuePositiveInt=course.planned_sessions)]
    out["status"] = "active"
    out["intent"] = "plan"
    out["category"] = [
        term(TABLE, "course-category", ctx),
        term(TABLE, f"course-{course.phase}", ctx),
    ]
    title = "Induction series" if course.phase == "induction" else "Maintenance treatment"
    out["title"] = title
    out["subject"] = identity.patient(ctx, patient_mrn).ref()
    out["author"] = identity.organization(ctx).ref(ctx.clinic_name)
    return out


def session_extension(course: TreatmentCourse, patient_mrn: str, ctx: MappingContext) -> JsonObject:
    """The Encounter's place in the course: the CarePlan and "session N (of M)"."""
    plan = course_identity(ctx, patient_mrn, course.course_id)
    label = f"session {course.session_number}"
    if course.planned_sessions is not None:
        label += f" of {course.planned_sessions}"
    parts: list[JsonValue] = [
        {"url": "carePlan", "valueReference": plan.ref(label)},
        {"url": "sessionNumber", "valuePositiveInt": course.session_number},
    ]
    return {"url": ctx.extension_url(SESSION), "extension": parts}


def unmap_course(
    resources: Sequence[Resource], encounter: Resource | None, ctx: MappingContext
) -> JsonObject | None:
    if encounter is None:
        return None
    session = next(
        (e for e in objs(encounter.get("extension")) if e.get("url") == ctx.extension_url(SESSION)),
        None,
    )
    if session is None:
        return None
    parts = {str(p.get("url")): p for p in objs(session.get("extension"))}
    plan = resolve(resources, obj(parts.get("carePlan", {}).get("valueReference")))
    if plan is None:
        return None
    value = next(
        (
            str(i["value"])
            for i in objs(plan.get("identifier"))
            if i.get("system") == identity.system(ctx, KIND)
        ),
        "",
    )
    keys = [coding_key(TABLE, c, ctx) for c in objs(plan.get("category"))]
    phase = next((p for p in PHASES if f"course-{p}" in keys), None)
    return {
        "course_id": identity.record_id_of(value),
        "phase": phase,
        "session_number": parts.get("sessionNumber", {}).get("valuePositiveInt"),
        "planned_sessions": ext_value(plan, ctx.extension_url(PLANNED), "valuePositiveInt"),
    }
