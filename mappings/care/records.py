"""The care records of an encounter document to FHIR and back, all at once."""

from __future__ import annotations

from collections.abc import Sequence

from mappings.care.consent import map_consent, unmap_consent
from mappings.care.course import map_course, unmap_course
from mappings.care.discharge import map_discharge, unmap_discharge
from mappings.care.rems import map_questionnaire, map_rems_response, unmap_rems
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.jsontypes import JsonObject, Resource


def map_care(
    sub: EncounterSubmission, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    """The care records' resources of an encounter document (its Encounter's course
    extension is `session_extension`'s)."""
    out: list[Resource] = []
    if sub.consent is not None:
        out.append(map_consent(sub.consent, scope, ctx))
    if sub.discharge is not None:
        out.append(map_discharge(sub.discharge, scope, ctx))
    if sub.course is not None:
        out.append(map_course(sub.course, sub.patient.mrn, ctx))
    response = map_rems_response(sub, scope, ctx)
    if response is not None:
        out.extend([map_questionnaire(ctx), response])
    return out


def unmap_care(
    resources: Sequence[Resource],
    scope: EncounterScope,
    encounter: Resource | None,
    ctx: MappingContext,
) -> JsonObject:
    """The care fields of the encounter document, from its resources."""
    return {
        "consent": unmap_consent(resources, scope, ctx),
        "discharge": unmap_discharge(resources, scope, ctx),
        "course": unmap_course(resources, encounter, ctx),
        "rems_monitoring": unmap_rems(resources, scope, ctx),
    }
