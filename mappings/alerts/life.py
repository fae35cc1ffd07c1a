"""Alerts with a life: which Flags a newer assessment of the same patient ends.

Every Flag the mappers raise belongs to a *family*, the question it answers:

    suicide-cssrs      C-SSRS screener risk, low / moderate / high   (intake_findings.csv)
    suicide-phq9       PHQ-9 item 9 positive                         (intake_findings.csv)
    mania              risk of mania                                 (intake_findings.csv)
    critical-<part>    a critical blood pressure, heart rate, SpO2
                       or respiratory rate                           (protocol_alerts.csv)

and a family is *assessed* whenever the question is asked again: a screening with a
C-SSRS (its risk-level Observation), a screening with a PHQ-9 (its total), every screening
for mania (its checklist response, which every screening has and which asks about a manic
phase), a reading of the measurement (its vital-sign Observation). The rule: a Flag stays
active until its family is next assessed for the patient; at that moment it ends (`status`
`inactive`, `period.end` the newer assessment's time), whatever the newer answer was. When
the newer answer is a risk again, the newer assessment's own Flag carries on from there,
at its own level, so exactly one Flag of a family (the newest assessment's, if it found a
risk) is active. An assessment at the same moment as a Flag's start never ends it.

`settle` applies this to a document about to be stored: the patient's active stored Flags
its assessments end, and its own Flags ended by what the store already knows (a screening
sent late, after a newer one; a resend of one a newer screening had ended). The store's
side of the times is what its Flags say: each Flag's start and end are assessments of
its family. Pure: the adapter reads the stored Flags and writes what this answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mappings.common.identity import PART_SEPARATOR
from mappings.common.lookup import coding_key, identifiers, obj, str_field
from mappings.common.narrative import refreshed
from mappings.context import MappingContext
from mappings.jsontypes import Resource

INTAKE_FLAGS = "intake_findings"
VITAL_FLAGS = "protocol_alerts"
INSTRUMENTS = "screening_instruments"
VITAL_SIGNS = "vital_signs"
_INTAKE_FAMILIES = {
    "flag-suicide-risk-low": "suicide-cssrs",
    "flag-suicide-risk-moderate": "suicide-cssrs",
    "flag-suicide-risk-high": "suicide-cssrs",
    "flag-phq9-item9-positive": "suicide-phq9",
    "flag-mania-risk": "mania",
}
_ASSESSING_OBSERVATIONS = {"cssrs-risk-level": "suicide-cssrs", "phq9-total": "suicide-phq9"}
VITAL_PARTS = ("blood-pressure", "heart-rate", "oxygen-saturation", "respiratory-rate")
CHECKLIST_SUFFIX = f"{PART_SEPARATOR}checklist"
INTAKE_KIND = "intake"


@dataclass(frozen=True)
class Moment:
    """A time as FHIR wrote it, and as a comparable instant."""

    text: str
    at: datetime


@dataclass(frozen=True)
class Settled:
    document: list[Resource]
    """The document's resources, its Flags ended where the store's newer ones say so."""
    ended: list[Resource]
    """New versions of the patient's stored Flags that the document's assessments end."""


def flag_family(flag: Resource, ctx: MappingContext) -> str | None:
    """The family of one of our Flags (None for anything else, an EHR's Flag included)."""
    if flag.get("resourceType") != "Flag":
        return None
    key = coding_key(INTAKE_FLAGS, flag.get("code"), ctx)
    if key in _INTAKE_FAMILIES:
        return _INTAKE_FAMILIES[key]
    key = coding_key(VITAL_FLAGS, flag.get("code"), ctx)
    if key is not None and key.startswith("flag-critical-"):
        return "critical-" + key.removeprefix("flag-critical-")
    return None


def assessments(resources: Iterable[Resource], ctx: MappingContext) -> dict[str, list[Moment]]:
    """When each family was assessed by these resources."""
    found: dict[str, list[Moment]] = {}
    for res in resources:
        for family, text in _assessed(res, ctx):
            moment = _moment(text)
            if moment is not None:
                found.setdefault(family, []).append(moment)
    return found


def settle(new: Sequence[Resource], stored: Sequence[Resource], ctx: MappingContext) -> Settled:
    """What storing `new` changes in the patient's Flags (`stored`: their current ones)."""
    ids = {str_field(r, "id") for r in new if r.get("resourceType") == "Flag"}
    others = [r for r in stored if r.get("resourceType") == "Flag" and r.get("id") not in ids]
    assessed = assessments(new, ctx)
    known = {family: list(moments) for family, moments in assessed.items()}
    for flag in stored:
        family = flag_family(flag, ctx)
        if family is not None:
            # Its own stored end counts too: a resend does not revive an ended Flag.
            known.setdefault(family, []).extend(_flag_moments(flag, flag in others))
    document = [_ended(r, known, ctx) if r.get("resourceType") == "Flag" else r for r in new]
    ended = [
        after
        for flag in others
        if flag.get("status") == "active" and (after := _ended(flag, assessed, ctx)) is not flag
    ]
    return Settled(document, ended)


def is_active_flag(flag: Resource) -> bool:
    return flag.get("status") == "active"


def _assessed(res: Resource, ctx: MappingContext) -> list[tuple[str, str]]:
    kind = res.get("resourceType")
    if kind == "Observation":
        when = str_field(res, "effectiveDateTime")
        if when is None:
            return []
        key = coding_key(INSTRUMENTS, res.get("code"), ctx)
        if key in _ASSESSING_OBSERVATIONS:
            return [(_ASSESSING_OBSERVATIONS[key], when)]
        vital = coding_key(VITAL_SIGNS, res.get("code"), ctx)
        return [(f"critical-{vital}", when)] if vital in VITAL_PARTS else []
    if kind == "QuestionnaireResponse" and _is_checklist(res, ctx):
        when = str_field(res, "authored")
        return [("mania", when)] if when is not None else []
    return []


def _is_checklist(res: Resource, ctx: MappingContext) -> bool:
    system = f"{ctx.namespace}/sid/{INTAKE_KIND}"
    return any(
        i.get("system") == system and str(i.get("value", "")).endswith(CHECKLIST_SUFFIX)
        for i in identifiers(res)
    )


def _moment(text: str | None) -> Moment | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return Moment(text, at) if at.tzinfo is not None else None


def _flag_moments(flag: Resource, with_start: bool) -> list[Moment]:
    period = obj(flag.get("period"))
    found = [_moment(str_field(period, "end"))]
    if with_start:
        found.append(_moment(str_field(period, "start")))
    return [m for m in found if m is not None]


def _ended(flag: Resource, known: dict[str, list[Moment]], ctx: MappingContext) -> Resource:
    """`flag` ended at the first assessment of its family after its start (itself if none,
    or if it is not active)."""
    family = flag_family(flag, ctx)
    start = _moment(str_field(obj(flag.get("period")), "start"))
    if family is None or start is None or not is_active_flag(flag):
        return flag
    later = [m for m in known.get(family, ()) if m.at > start.at]
    if not later:
        return flag
    end = min(later, key=lambda m: m.at)
    period = {**obj(flag.get("period")), "end": end.text}
    return refreshed({**flag, "status": "inactive", "period": period})
