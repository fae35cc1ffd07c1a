"""What the screening warns about: DetectedIssues for the session, Flags for the chart.

A DetectedIssue is a conflict with the planned treatment: a contraindication while the
encounter has an infusion (planned = an infusion record exists), fasting shorter than
the clinic's protocol (`fasting.npo_hours`), or no confirmed escort home. A Flag is a
standing banner, coded by what raised it: the C-SSRS screener's suicide risk by level
(low, moderate, high), a positive PHQ-9 item 9, a risk of mania. Each starts at the
screening; a later screening of the patient ends it (`mappings.alerts`). All are computed
by the adapter, which is their author.
"""

from __future__ import annotations

from mappings import terminology
from mappings.common.builders import number, term
from mappings.intake.base import CHECKLIST, IntakeFrame
from mappings.intake.findings import finding_ref, finding_text, positive_contraindications
from mappings.intake.scores import cssrs_risk, fasting_hours, observation_ref, phq9_item9_positive
from mappings.jsontypes import JsonObject, JsonValue, Resource

CONTRAINDICATIONS = "contraindications"
FINDINGS = "intake_findings"
PREGNANT = "pregnant"


def map_alerts(frame: IntakeFrame) -> list[Resource]:
    out: list[Resource] = []
    if frame.planned_request is not None:
        out.extend(
            _contraindication_issue(frame, key) for key in positive_contraindications(frame.record)
        )
    out.extend(_fasting_issue(frame))
    out.extend(_escort_issue(frame))
    record = frame.record
    risk = cssrs_risk(record.cssrs) if record.cssrs is not None else "none"
    if risk != "none":
        out.append(_flag(frame, f"suicide-risk-{risk}", "flag-category-safety"))
    if phq9_item9_positive(record):
        out.append(_flag(frame, "phq9-item9-positive", "flag-category-safety"))
    if record.bipolar_disorder or record.contraindications.bipolar_manic_phase:
        out.append(_flag(frame, "mania-risk", "flag-category-clinical"))
    return out


def _issue(
    frame: IntakeFrame,
    part: str,
    code: JsonObject,
    severity: str,
    implicated: list[JsonObject],
    detail: str,
) -> Resource:
    out = frame.head("DetectedIssue", part)
    out["status"] = "final"
    out["code"] = code
    out["severity"] = severity
    out["patient"] = frame.patient
    out["identifiedDateTime"] = frame.completed
    out["author"] = frame.adapter
    request = frame.planned_request
    refs: list[JsonValue] = [*implicated, *([request] if request is not None else [])]
    if refs:
        out["implicated"] = refs
    out["detail"] = detail
    return out


def _contraindication_issue(frame: IntakeFrame, key: str) -> Resource:
    implicated = [finding_ref(frame, key)]
    if key == PREGNANT:
        implicated.append(observation_ref(frame, "pregnancy-status"))
    return _issue(
        frame,
        f"issue-{key}",
        term(CONTRAINDICATIONS, f"issue-{key}", frame.ctx),
        "high",
        implicated,
        f"Contraindication to the planned ketamine treatment: {finding_text(key)}.",
    )


def _fasting_issue(frame: IntakeFrame) -> list[Resource]:
    """Fasting shorter than policy at the end of the screening (unknown fasting: no issue)."""
    hours = fasting_hours(frame.record)
    required = frame.ctx.protocol.npo_hours
    if hours is None or hours >= required:
        return []
    implicated = [observation_ref(frame, "fasting-duration")] if hours >= 0 else []
    detail = (
        f"Fasted {number(hours)} h at the end of the intake screening;"
        f" clinic policy requires {number(required)} h."
    )
    code = term(FINDINGS, "issue-fasting", frame.ctx)
    return [_issue(frame, "issue-fasting", code, "moderate", implicated, detail)]


def _escort_issue(frame: IntakeFrame) -> list[Resource]:
    escort = frame.record.escort
    if escort is not None and escort.confirmed:
        return []
    detail = "No escort home confirmed at the intake screening."
    code = term(FINDINGS, "issue-escort", frame.ctx)
    implicated = [frame.response_ref(CHECKLIST)]
    return [_issue(frame, "issue-escort", code, "moderate", implicated, detail)]


def _flag(frame: IntakeFrame, part: str, category: str) -> Resource:
    out = frame.head("Flag", part)
    out["status"] = "active"
    out["category"] = [term(FINDINGS, category, frame.ctx)]
    code = terminology.code(FINDINGS, f"flag-{part}")
    out["code"] = term(FINDINGS, f"flag-{part}", frame.ctx, text=code.display)  # the banner
    out["subject"] = frame.patient
    out["period"] = {"start": frame.completed}
    out["encounter"] = frame.encounter
    out["author"] = frame.adapter
    return out
