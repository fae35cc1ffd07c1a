"""The protocol's rules applied to an infusion record: what is forbidden, what needs an eye.

`forbidden` answers the `FieldError`s of a record the protocol forbids (a dose above a
hard ceiling, an esketamine dose the label does not allow): the document is refused
(422), each error naming the field, the rule's entry and its source. `findings` answers
what is accepted but needs a clinician (a dose above the usual range, observation shorter
than required, a monitor without the required qualification): the infusion mapper makes
each a DetectedIssue.

Comparisons: a ceiling is broken strictly above it (2.0 mg/kg is within a 2.0 ceiling);
an observation is short strictly below its minimum (120 minutes meet a 120-minute rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.contract import InfusionProcedure, Provider
from mappings.contract.units import fmt
from mappings.errors import FieldError
from mappings.protocol.model import ClinicProtocol, DoseRule

SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class Finding:
    """One rule a record breaks that a clinician must look at."""

    rule: str
    """The rule's key: `dose-above-usual`, `observation-short`, `monitor-not-qualified`."""
    field: str
    """The contract field it is about (relative to the infusion)."""
    entry: str
    """The protocol entry that says the rule (`doses.ketamine.intravenous.usual_max_mg_per_kg`)."""
    detail: str
    severity: str
    """`high`, `moderate` or `low` (FHIR detectedissue-severity)."""


def forbidden(
    infusion: InfusionProcedure, protocol: ClinicProtocol, at: str = ""
) -> list[FieldError]:
    """Every hard rule the infusion breaks, its path prefixed with `at` (`infusion.`)."""
    rule = protocol.dose_rule(infusion.medication, infusion.route)
    if rule is None:
        return []
    entry = f"doses.{infusion.medication}.{infusion.route}"
    errors = [
        FieldError(f"{at}{field}", message)
        for field, _, message in _ceilings(infusion, rule, entry, "hard")
    ]
    allowed = _allowed_message(infusion, rule, entry)
    if allowed is not None:
        errors.append(FieldError(f"{at}total_dose_mg", allowed))
    return errors


def findings(
    infusion: InfusionProcedure, providers: tuple[Provider, ...], protocol: ClinicProtocol
) -> list[Finding]:
    """Every rule needing a clinician's eye that the infusion breaks, in a fixed order."""
    return [
        *_usual_dose(infusion, protocol),
        *_observation(infusion, protocol),
        *_monitor(infusion, providers, protocol),
    ]


def _above(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit


_CEILINGS = (("dose_mg_per_kg", "mg/kg", "max_mg_per_kg"), ("total_dose_mg", "mg", "max_total_mg"))
_CEILING_WORDS = {"hard": "hard ceiling", "usual": "clinic's usual maximum"}


def _ceilings(
    infusion: InfusionProcedure, rule: DoseRule, entry: str, kind: str
) -> list[tuple[str, str, str]]:
    """(field, protocol entry, message) for each `kind` (`hard`, `usual`) ceiling broken."""
    found: list[tuple[str, str, str]] = []
    for field, unit, suffix in _CEILINGS:
        value = getattr(infusion, field)
        name = f"{kind}_{suffix}"
        limit: float | None = getattr(rule, name)
        if value is not None and limit is not None and _above(value, limit):
            message = (
                f"{fmt(value)} {unit} is above the {_CEILING_WORDS[kind]} of {fmt(limit)} "
                f"{unit} (protocol rule {entry}.{name}; source: {rule.source})"
            )
            found.append((field, f"{entry}.{name}", message))
    return found


def _allowed_message(infusion: InfusionProcedure, rule: DoseRule, entry: str) -> str | None:
    """A completed session must give one of the allowed doses; a stopped one no more than
    the largest (a session stopped after one 28 mg device gave 28 mg)."""
    allowed = rule.allowed_total_mg
    if allowed is None:
        return None
    total = infusion.total_dose_mg
    shown = ", ".join(fmt(d) for d in allowed)
    where = f"(protocol rule {entry}.allowed_total_mg; source: {rule.source})"
    drug = infusion.medication
    if infusion.status == "completed" and not any(abs(total - d) < 1e-9 for d in allowed):
        return f"{fmt(total)} mg is not an allowed {drug} dose: one of {shown} mg {where}"
    if infusion.status != "completed" and total > max(allowed):
        largest = fmt(max(allowed))
        return f"{fmt(total)} mg is above the largest allowed {drug} dose, {largest} mg {where}"
    return None


def _usual_dose(infusion: InfusionProcedure, protocol: ClinicProtocol) -> list[Finding]:
    rule = protocol.dose_rule(infusion.medication, infusion.route)
    if rule is None:
        return []
    entry = f"doses.{infusion.medication}.{infusion.route}"
    return [
        Finding("dose-above-usual", field, name, f"{_WHAT[field]} {message}.", "moderate")
        for field, name, message in _ceilings(infusion, rule, entry, "usual")
    ]


_WHAT = {"dose_mg_per_kg": "Dose", "total_dose_mg": "Total dose"}


def observation_minutes(infusion: InfusionProcedure, measured_from: str) -> float | None:
    """Minutes from the start or end of dosing to `recovery_end`; None when either is unknown."""
    anchor = infusion.start if measured_from == "start" else infusion.end
    if anchor is None or infusion.recovery_end is None:
        return None
    return (infusion.recovery_end - anchor).total_seconds() / SECONDS_PER_MINUTE


def _observation(infusion: InfusionProcedure, protocol: ClinicProtocol) -> list[Finding]:
    rule = protocol.observation_rule(infusion.medication)
    if rule is None or infusion.status == "not_done":
        return []
    minutes = observation_minutes(infusion, rule.measured_from)
    if minutes is None or minutes >= rule.minimum_minutes:
        return []
    detail = (
        f"Observation after {infusion.medication} lasted {fmt(round(minutes, 1))} minutes from the "
        f"{rule.measured_from} of dosing to recovery_end; the protocol requires at least "
        f"{rule.minimum_minutes} minutes (protocol rule observation.{infusion.medication}"
        f".minimum_minutes; source: {rule.source})."
    )
    entry = f"observation.{infusion.medication}.minimum_minutes"
    return [Finding("observation-short", "recovery_end", entry, detail, "high")]


def _monitor(
    infusion: InfusionProcedure, providers: tuple[Provider, ...], protocol: ClinicProtocol
) -> list[Finding]:
    rule = protocol.monitor_rule(infusion.medication)
    monitor_id = infusion.monitored_by
    if rule is None or rule.required_qualification == "none" or monitor_id is None:
        return []
    if infusion.status == "not_done":
        return []
    provider = next((p for p in providers if p.provider_id == monitor_id), None)
    if provider is not None and provider.acls_certified is True:
        return []
    said = "is recorded without ACLS" if provider is not None else "is not known to hold ACLS"
    detail = (
        f"The provider who monitored this {infusion.medication} session {said}; the protocol "
        f"requires ACLS (protocol rule monitor.{infusion.medication}.required_qualification; "
        f"source: {rule.source})."
    )
    entry = f"monitor.{infusion.medication}.required_qualification"
    return [Finding("monitor-not-qualified", "monitored_by", entry, detail, "moderate")]
