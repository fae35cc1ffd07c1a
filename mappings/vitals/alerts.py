"""Critical vital signs as Flags: one per measurement interpreted critical (HH or LL).

The interpretation is the protocol's (`interpretation.py`, limits per phase); a reading
set whose blood pressure, heart rate, SpO2 or respiratory rate is critical raises a Flag
coded by the measurement (`protocol_alerts.csv`), its period starting at the reading, its
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
from mappings.jsontypes import JsonObject, Resource
from mappings.vitals.interpretation import CRITICAL_HIGH, CRITICAL_LOW

KIND = "vitals-alert"
"""Identifier kind: `<namespace>/sid/vitals-alert`, value `<vitals key>~<measure part>`."""
TABLE = "protocol_alerts"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
_WORDS = {CRITICAL_HIGH: "critical high", CRITICAL_LOW: "critical low"}


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
    out["code"] = term(TABLE, key, ctx, text=f"{display} ({_WORDS[verdict]})")
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["period"] = {"start": fhir_datetime(record.taken_at)}
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["author"] = identity.device(ctx).ref(ctx.adapter_name)
    return out
