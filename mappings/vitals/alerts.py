"""Critical vital signs as Flags: one per measurement interpreted critical (HH or LL).

The interpretation is the protocol's (`interpretation.py`, limits per phase); a reading
set whose blood pressure, heart rate, SpO2 or respiratory rate is critical raises a Flag
coded by the measurement (`protocol_alerts.csv`) and saying in its text the value, the
phase and the protocol's limits that judged it, its period starting at the reading, its
`flag-detail` extension pointing at the Observation. A later reading of the same
measurement for the patient ends it (`mappings.alerts`). Derived data: the reverse
mapping does not read them.
"""

from __future__ import annotations

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.identity import Identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import VitalsObservation
from mappings.contract.units import fmt
from mappings.jsontypes import JsonObject, Resource
from mappings.protocol import PHASE_GROUPS
from mappings.vitals.interpretation import CRITICAL_HIGH, CRITICAL_LOW
from mappings.vitals.measures import BLOOD_PRESSURE, SINGLE_MEASURES

KIND = "vitals-alert"
"""Identifier kind: `<namespace>/sid/vitals-alert`, value `<vitals key>~<measure part>`."""
TABLE = "protocol_alerts"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
_WORDS = {CRITICAL_HIGH: "critical high", CRITICAL_LOW: "critical low"}


def _shown(record: VitalsObservation, part: str) -> str:
    """The reading as a clinician writes it: `186/112 mmHg`, `86 %`."""
    if part == BLOOD_PRESSURE and record.systolic is not None and record.diastolic is not None:
        return f"{fmt(record.systolic.value)}/{fmt(record.diastolic.value)} {record.systolic.unit}"
    measure = next(m for m in SINGLE_MEASURES if m.part == part)
    measured = measure.read(record)
    return "" if measured is None else f"{fmt(measured.value)} {measured.unit}"


def alert_identity(ctx: MappingContext, vitals_key: str, part: str) -> Identity:
    return identity.identity(ctx, "Flag", KIND, vitals_key, part)


def critical_flag(
    record: VitalsObservation,
    part: str,
    verdict: str | None,
    observation: JsonObject,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource | None:
    """The Flag for one measurement of a reading set, or None unless it is critical."""
    key = f"flag-critical-{part}"
    if verdict not in _WORDS or not terminology.has(TABLE, key):
        return None
    vitals_key = scope.key(ctx, identity.VITALS, record.vitals_id)
    head = resource(alert_identity(ctx, vitals_key, part), ctx)
    identifier = head.pop("identifier")
    detail: JsonObject = {"url": FLAG_DETAIL, "valueReference": observation}
    out: Resource = {**head, "extension": [detail], "identifier": identifier}
    out["status"] = "active"
    out["category"] = [term(TABLE, "flag-category-clinical", ctx)]
    display = terminology.code(TABLE, key).display
    said = (
        f"{display} ({_WORDS[verdict]}): {_shown(record, part)}, {record.phase} reading "
        f"(protocol vitals.{PHASE_GROUPS[record.phase]})"
    )
    out["code"] = term(TABLE, key, ctx, text=said)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["period"] = {"start": fhir_datetime(record.taken_at)}
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["author"] = identity.device(ctx).ref(ctx.adapter_name)
    return out
