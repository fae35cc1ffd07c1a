"""The clinic's protocol as data: dose ranges, allowed doses, observation times, the
monitor's qualification, vital-sign limits per phase and fasting, each rule with its
source; the defaults ship in `defaults.toml`, a tenant overrides them with a file of its
own (`load_protocol`), and `rules` applies them to an infusion.

    model.py   the protocol's shape, its defaults and overrides (`load_protocol`)
    rules.py   forbidden (refused, 422) and needing a clinician's eye (DetectedIssues)
"""

from __future__ import annotations

from mappings.protocol.model import (
    PHASE_GROUPS,
    ClinicProtocol,
    DoseRule,
    FastingRule,
    MonitorRule,
    ObservationRule,
    ProtocolError,
    VitalThresholds,
    default_protocol,
    load_protocol,
)
from mappings.protocol.rules import Finding, findings, forbidden, observation_minutes

__all__ = [
    "PHASE_GROUPS",
    "ClinicProtocol",
    "DoseRule",
    "FastingRule",
    "Finding",
    "MonitorRule",
    "ObservationRule",
    "ProtocolError",
    "VitalThresholds",
    "default_protocol",
    "findings",
    "forbidden",
    "load_protocol",
    "observation_minutes",
]
