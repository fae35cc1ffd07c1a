"""An intake screening to FHIR, and back.

    base.py       identity and the references every part repeats
    responses.py  QuestionnaireResponses: PHQ-9, GAD-7, PCL-5, C-SSRS, checklist
    scores.py     survey Observations: totals, suicide risk, pain, pregnancy, fasting
    findings.py   Conditions for positive findings; AllergyIntolerance to ketamine
    alerts.py     DetectedIssues (contraindication, fasting, escort) and Flags

The reverse mapping reads the responses only: they hold every answer, so everything
else can be recomputed and an EHR's copy of the derived resources is never trusted
over them.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common.identity import PART_SEPARATOR
from mappings.common.lookup import identifiers, obj, resolve
from mappings.common.narrative import with_narratives
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import IntakeScreening
from mappings.intake.alerts import map_alerts
from mappings.intake.base import CHECKLIST, IntakeFrame, response_identity
from mappings.intake.findings import map_findings
from mappings.intake.responses import map_responses, unmap_responses
from mappings.intake.scores import map_scores
from mappings.jsontypes import Resource


def map_intake(
    record: IntakeScreening, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    frame = IntakeFrame(record, scope, ctx)
    resources = [*map_responses(frame), *map_scores(frame), *map_findings(frame)]
    return with_narratives([*resources, *map_alerts(frame)])


def unmap_intake(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> IntakeScreening | None:
    """The encounter's screening, found by its checklist response's identifier."""
    found = _checklist_of(resources, scope, ctx)
    if found is None:
        return None
    screening_key, checklist = found
    return IntakeScreening.model_validate(unmap_responses(resources, checklist, screening_key, ctx))


def _checklist_of(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> tuple[str, Resource] | None:
    """The checklist response of this encounter (first by screening key if several).

    A response whose encounter is not among the resources (an EHR's partial answer)
    is taken only when none can be shown to belong to this encounter.
    """
    candidates = sorted(_checklists(resources, ctx), key=lambda found: found[0])
    ours = [c for c in candidates if scope.holds(c[1], resources, ctx) is True]
    if not ours:
        ours = [c for c in candidates if resolve(resources, obj(c[1].get("encounter"))) is None]
    return ours[0] if ours else None


def _checklists(resources: Sequence[Resource], ctx: MappingContext) -> list[tuple[str, Resource]]:
    system = response_identity(ctx, "-", CHECKLIST).system
    out: list[tuple[str, Resource]] = []
    for res in resources:
        if res.get("resourceType") != "QuestionnaireResponse":
            continue
        for ident in identifiers(res):
            value = ident.get("value")
            if ident.get("system") != system or not isinstance(value, str):
                continue
            screening_key, separator, part = value.rpartition(PART_SEPARATOR)
            if separator and part == CHECKLIST:
                out.append((screening_key, res))
    return out
