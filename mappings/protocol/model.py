"""The clinic's protocol as checked data: its shape, its defaults, a tenant's override.

The defaults ship beside this module (`defaults.toml`, each rule with its source); a
tenant's file overrides any entry of them, table by table (an entry left out keeps the
default). `load_protocol` refuses a file that does not fit, with a `ProtocolError` whose
lines each name the file and the entry (`doses.ketamine.intravenous.hard_max_mg_per_kg`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Annotated, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Drug = Literal["ketamine", "esketamine"]
Route = Literal["intravenous", "intranasal", "intramuscular"]
PhaseGroup = Literal["pre_infusion", "intra_infusion", "recovery"]
PHASE_GROUPS: Mapping[str, PhaseGroup] = {
    "baseline": "pre_infusion",
    "pre_infusion": "pre_infusion",
    "intra_infusion": "intra_infusion",
    "post_infusion": "recovery",
    "discharge": "recovery",
}
"""The protocol's vital-sign phase of each reading phase of the contract."""

Limit = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
"""A limit: a positive number (TOML integers are numbers too, strings never)."""
Source = Annotated[str, Field(min_length=3, strict=True)]
DEFAULTS_FILE = "defaults.toml"
K = TypeVar("K", bound=str)


class ProtocolError(ValueError):
    """A protocol file that does not fit; `problems` name the entry of each."""

    def __init__(self, origin: str, problems: list[str]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__("; ".join(f"{origin}: {p}" for p in problems))


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_above(low: float | None, high: float | None, low_name: str, high_name: str) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{low_name} ({low:g}) must not be above {high_name} ({high:g})")


class DoseRule(_Rule):
    """One drug by one route: the usual ceiling (above it: a DetectedIssue) and the hard one
    (above it: refused), per kg and in total; or the only total doses allowed."""

    usual_max_mg_per_kg: Limit | None = None
    hard_max_mg_per_kg: Limit | None = None
    usual_max_total_mg: Limit | None = None
    hard_max_total_mg: Limit | None = None
    allowed_total_mg: tuple[Limit, ...] | None = None
    source: Source

    @model_validator(mode="after")
    def _usual_within_hard(self) -> Self:
        _not_above(
            self.usual_max_mg_per_kg,
            self.hard_max_mg_per_kg,
            "usual_max_mg_per_kg",
            "hard_max_mg_per_kg",
        )
        _not_above(
            self.usual_max_total_mg,
            self.hard_max_total_mg,
            "usual_max_total_mg",
            "hard_max_total_mg",
        )
        if self.allowed_total_mg is not None and not self.allowed_total_mg:
            raise ValueError("allowed_total_mg must list at least one dose")
        return self


class ObservationRule(_Rule):
    """How long the patient stays monitored: from the start or the end of dosing to
    `recovery_end`."""

    minimum_minutes: Annotated[int, Field(ge=0, le=24 * 60, strict=True)]
    measured_from: Literal["start", "end"]
    source: Source


class MonitorRule(_Rule):
    """The qualification the provider who monitors a session must hold."""

    required_qualification: Literal["acls", "none"]
    source: Source


class FastingRule(_Rule):
    npo_hours: Annotated[float, Field(ge=0, le=24, strict=True)]
    source: Source


class VitalThresholds(_Rule):
    """One phase's vital-sign limits in canonical units (mmHg, /min, %); None: no rule."""

    systolic_high: Limit | None = None
    diastolic_high: Limit | None = None
    systolic_critical: Limit | None = None
    diastolic_critical: Limit | None = None
    systolic_rise_critical: Limit | None = None
    diastolic_rise_critical: Limit | None = None
    heart_rate_high: Limit | None = None
    heart_rate_low: Limit | None = None
    heart_rate_critical_high: Limit | None = None
    heart_rate_critical_low: Limit | None = None
    spo2_low: Limit | None = None
    spo2_critical_low: Limit | None = None
    respiratory_rate_high: Limit | None = None
    respiratory_rate_low: Limit | None = None
    source: Source = "clinic"

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for low, high in (
            ("systolic_high", "systolic_critical"),
            ("diastolic_high", "diastolic_critical"),
            ("heart_rate_low", "heart_rate_high"),
            ("heart_rate_high", "heart_rate_critical_high"),
            ("heart_rate_critical_low", "heart_rate_low"),
            ("spo2_critical_low", "spo2_low"),
            ("respiratory_rate_low", "respiratory_rate_high"),
        ):
            _not_above(getattr(self, low), getattr(self, high), low, high)
        return self


class ClinicProtocol(_Rule):
    """Every rule of one clinic's protocol."""

    doses: Mapping[Drug, Mapping[Route, DoseRule]]
    observation: Mapping[Drug, ObservationRule]
    monitor: Mapping[Drug, MonitorRule]
    fasting: FastingRule
    vitals: Mapping[PhaseGroup, VitalThresholds]

    def dose_rule(self, drug: str, route: str) -> DoseRule | None:
        by_route = _lookup(self.doses, drug)
        return None if by_route is None else _lookup(by_route, route)

    def observation_rule(self, drug: str) -> ObservationRule | None:
        return _lookup(self.observation, drug)

    def monitor_rule(self, drug: str) -> MonitorRule | None:
        return _lookup(self.monitor, drug)

    def vitals_for(self, phase: str) -> VitalThresholds:
        """The limits that judge a reading taken in the contract's `phase`."""
        return self.vitals.get(PHASE_GROUPS[phase], _NO_LIMITS)

    @property
    def npo_hours(self) -> float:
        return self.fasting.npo_hours


_NO_LIMITS = VitalThresholds()
T = TypeVar("T")


def _lookup(table: Mapping[K, T], key: str) -> T | None:
    """`table[key]` for a table keyed by one of the protocol's names (None: no such rule)."""
    return next((value for name, value in table.items() if name == key), None)


def _merged(base: Mapping[str, object], over: Mapping[str, object]) -> dict[str, object]:
    """`base` with `over`'s entries; tables merge key by key, everything else replaces."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = value
    return out


def _unsourced(over: Mapping[str, object], path: str = "") -> list[str]:
    """The rules an override changes without saying where the change comes from: a table
    of `over` that sets a rule's entries must set its `source` too."""
    problems: list[str] = []
    sets_entries = any(k != "source" and not isinstance(v, Mapping) for k, v in over.items())
    if path and sets_entries and "source" not in over:
        problems.append(f"{path.rstrip('.')}.source: required when the rule is changed (say why)")
    for key, value in over.items():
        if isinstance(value, Mapping):
            problems += _unsourced(value, f"{path}{key}.")
    return problems


def _entry(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(the file)"


def _problems(exc: ValidationError) -> list[str]:
    return [
        f"{_entry(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)
    ]


@cache
def _default_table() -> Mapping[str, object]:
    text = resources.files(__package__ or __name__).joinpath(DEFAULTS_FILE).read_text("utf-8")
    return tomllib.loads(text)


def load_protocol(override: str | None = None, *, origin: str = "override") -> ClinicProtocol:
    """The shipped defaults, with `override` (the text of a tenant's TOML file) applied;
    `ProtocolError` naming `origin` and each bad entry when it does not fit."""
    if override is None:
        return default_protocol()
    try:
        table = tomllib.loads(override)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(origin, [f"not valid TOML: {exc}"]) from None
    unsourced = _unsourced(table)
    if unsourced:
        raise ProtocolError(origin, unsourced)
    try:
        return ClinicProtocol.model_validate(_merged(_default_table(), table))
    except ValidationError as exc:
        raise ProtocolError(origin, _problems(exc)) from None


@cache
def default_protocol() -> ClinicProtocol:
    """The protocol shipped with the adapter (`defaults.toml`)."""
    try:
        return ClinicProtocol.model_validate(_default_table())
    except ValidationError as exc:  # a broken shipped file: a bug, said plainly
        raise ProtocolError(DEFAULTS_FILE, _problems(exc)) from None
