"""Scores and reported findings of a screening as `survey` Observations.

Totals are computed from the items (never taken from the sender), each Observation
points at the response it was derived from (`derivedFrom`), and severity bands are
the instruments' published scoring, written as a `component` of the total.

Why a component and not `interpretation`: R4 binds `Observation.interpretation`
(extensibly) to v3 ObservationInterpretation, which has no depression or anxiety severity
bands, and LOINC's PHQ-9 severity code (44262-4) is deprecated; a clinic code there draws
a validator warning on every total. `component.code` (example binding) and its
`valueCodeableConcept` (no binding) take the clinic's own codes, and keep the band beside
the score it was computed from.
"""

from __future__ import annotations

from mappings.common import identity
from mappings.common.builders import quantity, term
from mappings.contract import CssrsScreener, IntakeScreening
from mappings.intake.base import CHECKLIST, IntakeFrame
from mappings.intake.responses import CSSRS, SCORED, scored_answers
from mappings.jsontypes import JsonObject, Resource

INSTRUMENTS = "screening_instruments"
ANSWERS = "screening_answers"
SEVERITY = "screening_severity"
FINDINGS = "intake_findings"

# Lower bound of each band, highest first (PHQ-9: LL382-3; GAD-7: Spitzer 2006).
SEVERITY_BANDS: dict[str, tuple[tuple[int, str], ...]] = {
    "phq9": (
        (20, "severe"),
        (15, "moderately-severe"),
        (10, "moderate"),
        (5, "mild"),
        (0, "minimal"),
    ),
    "gad7": ((15, "severe"), (10, "moderate"), (5, "mild"), (0, "minimal")),
}
HIGH_RISK_ITEMS = (
    "active_ideation_with_intent",
    "active_ideation_with_plan",
    "suicidal_behavior_past_3_months",
)
"""The screener's triage (terminology 1a): any of these answered yes means high risk;
active ideation with a method alone means moderate risk."""
PHQ9_SELF_HARM_ITEM = 8
"""Index of PHQ-9 item 9 (thoughts of being better off dead or of self-harm)."""
SECONDS_PER_HOUR = 3600


def map_scores(frame: IntakeFrame) -> list[Resource]:
    record = frame.record
    out: list[Resource] = []
    for instrument in SCORED:
        answers = scored_answers(record, instrument.part)
        if answers is not None:
            out.append(_total(frame, instrument.part, sum(answers)))
    if record.cssrs is not None:
        out.append(_cssrs_risk(frame, record.cssrs))
    if record.pain_score is not None:
        out.append(_pain(frame, record.pain_score))
    out.append(_pregnancy_status(frame))
    hours = fasting_hours(record)
    if hours is not None and hours >= 0:
        out.append(_fasting(frame, hours))
    return out


def cssrs_risk(cssrs: CssrsScreener) -> str:
    """`high`, `moderate`, `low` or `none`: the screener's triage, as the contract defines it."""
    if any(getattr(cssrs, name) for name in HIGH_RISK_ITEMS):
        return "high"
    if cssrs.active_ideation_with_method:
        return "moderate"
    if cssrs.wish_to_be_dead or cssrs.non_specific_active_thoughts:
        return "low"
    return "none"


def phq9_item9_positive(record: IntakeScreening) -> bool:
    """Any answer above 0 to PHQ-9 item 9 (thoughts of death or self-harm)."""
    return record.phq9 is not None and record.phq9[PHQ9_SELF_HARM_ITEM] > 0


def fasting_hours(record: IntakeScreening) -> float | None:
    """Hours from the last oral intake to the end of the screening (2 decimals)."""
    if record.last_oral_intake_at is None:
        return None
    elapsed = record.completed_at - record.last_oral_intake_at
    return round(elapsed.total_seconds() / SECONDS_PER_HOUR, 2)


def severity_key(part: str, total: int) -> str | None:
    bands = SEVERITY_BANDS.get(part)
    if bands is None:
        return None
    return next(f"{part}-{band}" for low, band in bands if total >= low)


def _observation(
    frame: IntakeFrame,
    part: str,
    code: JsonObject,
    value: JsonObject,
    *,
    derived_from: str,
    category: str = "category-survey",
    self_reported: bool = False,
    component: JsonObject | None = None,
) -> Resource:
    out = frame.head("Observation", part)
    out["status"] = "final"
    out["category"] = [term(INSTRUMENTS, category, frame.ctx)]
    out["code"] = code
    out["subject"] = frame.patient
    out["encounter"] = frame.encounter
    out["effectiveDateTime"] = frame.completed
    # Self-reported: the patient; else the clinic that recorded it (a performer is what
    # R4's validator asks every Observation for).
    out["performer"] = [frame.patient if self_reported else _clinic(frame)]
    out.update(value)
    out["derivedFrom"] = [frame.response_ref(derived_from)]
    if component is not None:
        out["component"] = [component]
    return out


def _total(frame: IntakeFrame, part: str, total: int) -> Resource:
    band = severity_key(part, total)
    return _observation(
        frame,
        f"{part}-total",
        term(INSTRUMENTS, f"{part}-total", frame.ctx),
        {"valueInteger": total},
        derived_from=part,
        self_reported=True,
        component=None if band is None else _severity(frame, band),
    )


def _clinic(frame: IntakeFrame) -> JsonObject:
    return identity.organization(frame.ctx).ref(frame.ctx.clinic_name)


def _severity(frame: IntakeFrame, band: str) -> JsonObject:
    return {
        "code": term(SEVERITY, "severity-band", frame.ctx),
        "valueCodeableConcept": term(SEVERITY, band, frame.ctx),
    }


def _cssrs_risk(frame: IntakeFrame, cssrs: CssrsScreener) -> Resource:
    risk = term(ANSWERS, f"cssrs-risk-{cssrs_risk(cssrs)}", frame.ctx)
    return _observation(
        frame,
        "cssrs-risk",
        term(INSTRUMENTS, "cssrs-risk-level", frame.ctx),
        {"valueCodeableConcept": risk},
        derived_from=CSSRS,
    )


def _pain(frame: IntakeFrame, score: int) -> Resource:
    return _observation(
        frame,
        "pain",
        term(FINDINGS, "pain-severity", frame.ctx),
        {"valueInteger": score},
        derived_from=CHECKLIST,
        self_reported=True,
    )


def _pregnancy_status(frame: IntakeFrame) -> Resource:
    """Always sent: the checklist answers pregnancy either way (US Core pregnancy status)."""
    status = "pregnant" if frame.record.contraindications.pregnant else "not-pregnant"
    return _observation(
        frame,
        "pregnancy-status",
        term(FINDINGS, "pregnancy-status", frame.ctx),
        {"valueCodeableConcept": term(FINDINGS, f"pregnancy-{status}", frame.ctx)},
        derived_from=CHECKLIST,
        category="category-social-history",
    )


def _fasting(frame: IntakeFrame, hours: float) -> Resource:
    return _observation(
        frame,
        "fasting-duration",
        term(FINDINGS, "fasting-duration", frame.ctx),
        {"valueQuantity": quantity(hours, "h")},
        derived_from=CHECKLIST,
    )


def observation_ref(frame: IntakeFrame, part: str) -> JsonObject:
    return frame.identity("Observation", part).ref()
