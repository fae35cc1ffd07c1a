"""Measurements: which units each field allows, and its physiologically possible range.

A range is stated once, in the canonical unit (Cel, kg, cm, ...); a value sent in another
unit is converted before the check, and the message shows both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import AfterValidator

from mappings.contract.translate import Issue, contract_error

if TYPE_CHECKING:
    from mappings.contract.models import Measurement

KG_PER_LB = 0.45359237
CM_PER_IN = 2.54
_EPSILON = 1e-9  # converted limits (e.g. 113 degF = 45 Cel) must not fail on rounding


def _same(value: float) -> float:
    return value


def fahrenheit_to_celsius(value: float) -> float:
    return (value - 32) * 5 / 9


def pounds_to_kg(value: float) -> float:
    return value * KG_PER_LB


def inches_to_cm(value: float) -> float:
    return value * CM_PER_IN


@dataclass(frozen=True)
class Quantity:
    """What one measurement field measures: its units and its possible range."""

    label: str
    canonical: str
    low: float
    high: float
    to_canonical: dict[str, Callable[[float], float]] = field(default_factory=dict)

    @property
    def units(self) -> list[str]:
        return [self.canonical, *self.to_canonical]

    def in_canonical(self, value: float, unit: str) -> float:
        return self.to_canonical.get(unit, _same)(value)


BLOOD_PRESSURE_SYSTOLIC = Quantity("systolic", "mmHg", 20, 300)
BLOOD_PRESSURE_DIASTOLIC = Quantity("diastolic", "mmHg", 20, 300)
HEART_RATE = Quantity("heart_rate", "/min", 20, 300)
RESPIRATORY_RATE = Quantity("respiratory_rate", "/min", 2, 80)
SPO2 = Quantity("spo2", "%", 50, 100)
TEMPERATURE = Quantity("temperature", "Cel", 30, 45, {"degF": fahrenheit_to_celsius})
WEIGHT = Quantity("weight", "kg", 1, 500, {"lb": pounds_to_kg})
HEIGHT = Quantity("height", "cm", 30, 272, {"in": inches_to_cm})


def fmt(value: float) -> str:
    """A number as a person writes it: 34, 0.5, 29.75 (at most two decimals)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def measurement_issues(quantity: Quantity, m: Measurement) -> list[Issue]:
    """Unit among those allowed, then value within range (in the canonical unit)."""
    if m.unit not in quantity.units:
        return [("unit", "must be one of: " + ", ".join(quantity.units))]
    canonical = quantity.in_canonical(m.value, m.unit)
    if quantity.low - _EPSILON <= canonical <= quantity.high + _EPSILON:
        return []
    shown = f"{quantity.label} {fmt(m.value)} {m.unit}"
    if m.unit != quantity.canonical:
        shown += f" ({fmt(canonical)} {quantity.canonical})"
    limits = f"{fmt(quantity.low)}-{fmt(quantity.high)} {quantity.canonical}"
    return [("value", f"{shown} is outside the possible range {limits}")]


def measured_as(quantity: Quantity) -> AfterValidator:
    """A field validator: the measurement fits `quantity`."""

    def check(m: Measurement) -> Measurement:
        issues = measurement_issues(quantity, m)
        if issues:
            raise contract_error(*issues)
        return m

    return AfterValidator(check)
