"""Vital-sign interpretation (N/H/L/HH/LL) from the clinic's alert policy.

The limits are the clinic's protocol (`MappingContext.protocol.vitals`, one set per phase:
pre-infusion, intra-infusion, recovery; defaults in `mappings/protocol/defaults.toml`),
stated in canonical units (mmHg, /min, %, Cel). A value sent in another
unit (degF, lb, in) is converted only to be judged; the Observation keeps the unit
the clinic sent. The answer is a key of `vital_interpretation.csv`, never a code.

Comparisons follow the wording of section 3d: "high" is strictly above its limit
(SBP >140), "low" strictly below (SpO2 <92), "critical high" at or above (SBP >=180,
a rise >=40), "critical low" strictly below (SpO2 <90).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mappings.contract import VitalsObservation
from mappings.protocol import ClinicProtocol, VitalThresholds
from mappings.vitals.measures import Measure

NORMAL = "normal"
HIGH = "high"
LOW = "low"
CRITICAL_HIGH = "critical-high"
CRITICAL_LOW = "critical-low"
_SEVERITY = {NORMAL: 0, HIGH: 1, LOW: 1, CRITICAL_HIGH: 2, CRITICAL_LOW: 2}

BASELINE_PHASES = ("baseline", "pre_infusion")
"""Where the baseline BP comes from, in order of preference: a `baseline` reading,
else (clinics often send none) the pre-dose `pre_infusion` reading."""

RISE_PHASES = frozenset({"intra_infusion", "post_infusion", "discharge"})
"""The rise-from-baseline rule judges readings after dosing only (3d: intra/post surge)."""


@dataclass(frozen=True)
class Limits:
    """One measurement's alert limits in its canonical unit; None = no such rule."""

    high: float | None = None
    low: float | None = None
    critical_high: float | None = None
    critical_low: float | None = None
    rise_critical: float | None = None


Policy = dict[str, Limits]
"""Limits by contract field name; a field without limits gets no interpretation."""


def policy_from(t: VitalThresholds) -> Policy:
    """The clinic's thresholds as per-field limits.

    Temperature, weight and height have no rule in section 3d, so none here.
    """
    return {
        "systolic": Limits(
            high=t.systolic_high,
            critical_high=t.systolic_critical,
            rise_critical=t.systolic_rise_critical,
        ),
        "diastolic": Limits(
            high=t.diastolic_high,
            critical_high=t.diastolic_critical,
            rise_critical=t.diastolic_rise_critical,
        ),
        "heart_rate": Limits(
            high=t.heart_rate_high,
            low=t.heart_rate_low,
            critical_high=t.heart_rate_critical_high,
            critical_low=t.heart_rate_critical_low,
        ),
        "respiratory_rate": Limits(high=t.respiratory_rate_high, low=t.respiratory_rate_low),
        "spo2": Limits(low=t.spo2_low, critical_low=t.spo2_critical_low),
    }


def phase_policy(protocol: ClinicProtocol, phase: str) -> Policy:
    """The limits that judge a reading taken in `phase` (a contract phase)."""
    return policy_from(protocol.vitals_for(phase))


def baseline_reading(records: Sequence[VitalsObservation]) -> VitalsObservation | None:
    """The encounter's baseline blood pressure reading: the earliest of the preferred phase."""
    for phase in BASELINE_PHASES:
        found = [r for r in records if r.phase == phase and r.systolic is not None]
        if found:
            return min(found, key=lambda r: r.taken_at)
    return None


def interpret(
    measure: Measure,
    record: VitalsObservation,
    baseline: VitalsObservation | None,
    policy: Policy,
) -> str | None:
    """The interpretation key of one measurement, or None when no rule covers it."""
    limits = policy.get(measure.field)
    measured = measure.read(record)
    if limits is None or measured is None:
        return None
    value = measure.quantity.in_canonical(measured.value, measured.unit)
    return _classify(value, _rise(measure, record, baseline), limits)


def worst(keys: Sequence[str | None]) -> str | None:
    """The most severe of several interpretations (the BP panel's own), first on a tie."""
    present = [k for k in keys if k is not None]
    return max(present, key=lambda k: _SEVERITY[k]) if present else None


def _classify(value: float, rise: float | None, limits: Limits) -> str:
    if _at_least(value, limits.critical_high) or _at_least(rise, limits.rise_critical):
        return CRITICAL_HIGH
    if _below(value, limits.critical_low):
        return CRITICAL_LOW
    if limits.high is not None and value > limits.high:
        return HIGH
    if _below(value, limits.low):
        return LOW
    return NORMAL


def _rise(
    measure: Measure, record: VitalsObservation, baseline: VitalsObservation | None
) -> float | None:
    """How far the value rose from the baseline reading, for readings after dosing."""
    if baseline is None or record.phase not in RISE_PHASES:
        return None
    now, then = measure.read(record), measure.read(baseline)
    if now is None or then is None:
        return None
    q = measure.quantity
    return q.in_canonical(now.value, now.unit) - q.in_canonical(then.value, then.unit)


def _at_least(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value >= limit


def _below(value: float, limit: float | None) -> bool:
    return limit is not None and value < limit
