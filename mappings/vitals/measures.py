"""What a vital-signs reading set is made of: its measurements, tables and identities.

One place names each measurement once (contract field, identity part, code key and
units), so the forward mapping, the reverse mapping and the interpretation rules
cannot disagree about which field is which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mappings.common.identity import Identity, identity
from mappings.context import MappingContext
from mappings.contract import Measurement, VitalsObservation
from mappings.contract import units as contract_units

CODES = "vital_signs"
UNITS = "vital_units"
PHASES = "vital_phases"
POSITIONS = "body_positions"
INTERPRETATIONS = "vital_interpretation"

PHASE_EXTENSION = "infusion-phase"
SEQUENCE_EXTENSION = "vitals-sequence"
BODY_POSITION_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-bodyPosition"

KIND = "vitals"
PANEL = "panel"
BLOOD_PRESSURE = "blood-pressure"

_R4_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
PROFILES = {
    PANEL: _R4_PROFILE + "vitalspanel",
    BLOOD_PRESSURE: _R4_PROFILE + "bp",
    "heart-rate": _R4_PROFILE + "heartrate",
    "respiratory-rate": _R4_PROFILE + "resprate",
    "oxygen-saturation": _R4_PROFILE + "oxygensat",
    "body-temperature": _R4_PROFILE + "bodytemp",
    "body-weight": _R4_PROFILE + "bodyweight",
    "body-height": _R4_PROFILE + "bodyheight",
}
"""The R4 vital-signs profile each Observation of a reading set declares in `meta.profile`
and meets (FHIR's own canonicals, not terminology): each derives from `vitalsigns`."""


@dataclass(frozen=True)
class Measure:
    """One measurement field of a reading set.

    `part` is both the identity part of its Observation (or component) and its key
    in `vital_signs.csv`; `quantity` gives its canonical unit for the alert rules.
    """

    field: str
    part: str
    quantity: contract_units.Quantity
    read: Callable[[VitalsObservation], Measurement | None]


SYSTOLIC = Measure(
    "systolic", "systolic", contract_units.BLOOD_PRESSURE_SYSTOLIC, lambda r: r.systolic
)
DIASTOLIC = Measure(
    "diastolic", "diastolic", contract_units.BLOOD_PRESSURE_DIASTOLIC, lambda r: r.diastolic
)
BP_COMPONENTS = (SYSTOLIC, DIASTOLIC)

SINGLE_MEASURES = (
    Measure("heart_rate", "heart-rate", contract_units.HEART_RATE, lambda r: r.heart_rate),
    Measure(
        "respiratory_rate",
        "respiratory-rate",
        contract_units.RESPIRATORY_RATE,
        lambda r: r.respiratory_rate,
    ),
    Measure("spo2", "oxygen-saturation", contract_units.SPO2, lambda r: r.spo2),
    Measure("temperature", "body-temperature", contract_units.TEMPERATURE, lambda r: r.temperature),
    Measure("weight", "body-weight", contract_units.WEIGHT, lambda r: r.weight),
    Measure("height", "body-height", contract_units.HEIGHT, lambda r: r.height),
)
"""Measurements that each become one Observation with a valueQuantity, in output order."""


def vitals_identity(ctx: MappingContext, vitals_key: str, part: str) -> Identity:
    """`Observation` `<namespace>/sid/vitals|<vitals key>~<part>` (the reading's record key,
    `<encounter_id>~<vitals_id>`)."""
    return identity(ctx, "Observation", KIND, vitals_key, part)
