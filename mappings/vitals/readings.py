"""Vital-sign reading sets as FHIR R4 vital-signs Observations, and back.

Each reading set (one VitalsObservation) becomes a vital-signs panel (85353-1) whose
`hasMember` lists one Observation per measurement: blood pressure as ONE Observation
with systolic/diastolic components, SpO2 with both LOINC codes. Every Observation keeps
the unit the clinic sent (as its UCUM code), carries the infusion phase in a clinic
extension and, during the infusion, is `partOf` the ketamine MedicationAdministration;
`interpretation` comes from the clinic's protocol (`interpretation.py`), and a critical
one raises a Flag (`alerts.py`).
The panel also records the set's place in the list, so the reverse mapping gives the
list back in the order it was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import (
    coding,
    extension,
    fhir_datetime,
    number,
    quantity,
    resource,
    term,
)
from mappings.common.lookup import obj
from mappings.common.narrative import with_narratives
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import Measurement, VitalsObservation
from mappings.jsontypes import JsonObject, JsonValue, Resource
from mappings.vitals.alerts import critical_flag
from mappings.vitals.interpretation import baseline_reading, interpret, phase_policy, worst
from mappings.vitals.measures import (
    BLOOD_PRESSURE,
    BODY_POSITION_EXTENSION,
    CODES,
    DIASTOLIC,
    INTERPRETATIONS,
    PANEL,
    PHASE_EXTENSION,
    PHASES,
    POSITIONS,
    PROFILES,
    SEQUENCE_EXTENSION,
    SINGLE_MEASURES,
    SYSTOLIC,
    UNITS,
    Measure,
    vitals_identity,
)
from mappings.vitals.reverse import unmap_vitals

__all__ = ["map_vitals", "unmap_vitals"]

Judge = Callable[[Measure, VitalsObservation], str | None]
"""The interpretation key of one measurement of one reading set (None: no rule)."""


def map_vitals(
    records: Sequence[VitalsObservation], scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    """Per reading set, in the order sent: its panel, then its measurement Observations.

    The rise-from-baseline rule needs the whole list: a reading sent alone (per-record
    submission) is judged on the absolute limits only.
    """
    baseline = baseline_reading(records)

    def judge(measure: Measure, record: VitalsObservation) -> str | None:
        return interpret(measure, record, baseline, phase_policy(ctx.protocol, record.phase))

    out: list[Resource] = []
    for sequence, record in enumerate(records, start=1):
        out.extend(_reading_set(record, sequence, judge, scope, ctx))
    return with_narratives(out)


def _reading_set(
    record: VitalsObservation,
    sequence: int,
    judge: Judge,
    scope: EncounterScope,
    ctx: MappingContext,
) -> list[Resource]:
    members: list[Resource] = []
    flags: list[Resource] = []
    bp = _blood_pressure(record, judge, scope, ctx)
    if bp is not None:
        members.append(bp)
        verdict = worst([judge(SYSTOLIC, record), judge(DIASTOLIC, record)])
        flags += _flag(record, BLOOD_PRESSURE, verdict, bp, scope, ctx)
    for measure in SINGLE_MEASURES:
        measured = measure.read(record)
        if measured is not None:
            single = _single(measure, measured, record, judge, scope, ctx)
            members.append(single)
            flags += _flag(record, measure.part, judge(measure, record), single, scope, ctx)
    panel_extensions = [
        _phase_extension(record, ctx),
        *_position_extension(record, ctx),
        extension(ctx, SEQUENCE_EXTENSION, valuePositiveInt=sequence),
    ]
    panel = _observation(record, PANEL, panel_extensions, scope, ctx)
    panel["hasMember"] = [{"reference": f"Observation/{m['id']}"} for m in members]
    return [panel, *members, *flags]


def _flag(
    record: VitalsObservation,
    part: str,
    verdict: str | None,
    observation: Resource,
    scope: EncounterScope,
    ctx: MappingContext,
) -> list[Resource]:
    found = critical_flag(
        record, part, verdict, {"reference": f"Observation/{observation['id']}"}, scope, ctx
    )
    return [] if found is None else [found]


def _observation(
    record: VitalsObservation,
    part: str,
    extensions: Sequence[JsonObject],
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    """What every Observation of a reading set shares, in the R4 element order."""
    key = scope.key(ctx, identity.VITALS, record.vitals_id)
    head = resource(vitals_identity(ctx, key, part), ctx)
    head["meta"] = {"profile": [PROFILES[part]], **obj(head["meta"])}
    identifier = head.pop("identifier")
    listed: list[JsonValue] = [*extensions]
    out: Resource = {**head, "extension": listed, "identifier": identifier}
    administration = scope.administration(ctx)
    if record.phase == "intra_infusion" and administration is not None:
        out["partOf"] = [administration.ref()]
    out["status"] = "final"
    out["category"] = [term(CODES, "category-vital-signs", ctx)]
    out["code"] = term(CODES, part, ctx)
    out["subject"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, scope.encounter_id).ref()
    out["effectiveDateTime"] = fhir_datetime(record.taken_at)
    out["performer"] = [_performer(scope, ctx)]
    return out


def _performer(scope: EncounterScope, ctx: MappingContext) -> JsonObject:
    """Who took the readings: the infusion's monitoring provider when the record names one,
    else the clinic (the vital-signs profiles ask for a performer)."""
    monitor = scope.infusion.monitored_by if scope.infusion is not None else None
    if monitor is not None:
        return identity.practitioner(ctx, monitor).ref()
    return identity.organization(ctx).ref(ctx.clinic_name)


def _single(
    measure: Measure,
    measured: Measurement,
    record: VitalsObservation,
    judge: Judge,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    out = _observation(record, measure.part, [_phase_extension(record, ctx)], scope, ctx)
    out["valueQuantity"] = _value_quantity(measured)
    _set_interpretation(out, judge(measure, record), ctx)
    return out


def _blood_pressure(
    record: VitalsObservation, judge: Judge, scope: EncounterScope, ctx: MappingContext
) -> Resource | None:
    """One 85354-9 Observation, no value of its own; its verdict is its worse component's."""
    systolic, diastolic = record.systolic, record.diastolic
    if systolic is None or diastolic is None:
        return None
    extensions = [_phase_extension(record, ctx), *_position_extension(record, ctx)]
    out = _observation(record, BLOOD_PRESSURE, extensions, scope, ctx)
    verdicts = [judge(SYSTOLIC, record), judge(DIASTOLIC, record)]
    _set_interpretation(out, worst(verdicts), ctx)
    out["component"] = [
        _component(SYSTOLIC, systolic, verdicts[0], ctx),
        _component(DIASTOLIC, diastolic, verdicts[1], ctx),
    ]
    return out


def _component(
    measure: Measure, measured: Measurement, verdict: str | None, ctx: MappingContext
) -> JsonObject:
    out: JsonObject = {"code": term(CODES, measure.part, ctx)}
    out["valueQuantity"] = _value_quantity(measured)
    _set_interpretation(out, verdict, ctx)
    return out


def _value_quantity(measured: Measurement) -> JsonObject:
    """The value as sent, its unit as the UCUM code of the clinic's unit string.

    A unit outside the table cannot pass the contract; should one reach here anyway
    (a record built without validation), it is kept as text rather than guessed.
    """
    if not terminology.has(UNITS, measured.unit):
        return {"value": number(measured.value), "unit": measured.unit}
    return quantity(measured.value, terminology.code(UNITS, measured.unit).code, measured.unit)


def _set_interpretation(out: JsonObject, verdict: str | None, ctx: MappingContext) -> None:
    if verdict is not None:
        out["interpretation"] = [term(INTERPRETATIONS, verdict, ctx)]


def _phase_extension(record: VitalsObservation, ctx: MappingContext) -> JsonObject:
    phase = coding(terminology.code(PHASES, record.phase), ctx)
    return extension(ctx, PHASE_EXTENSION, valueCoding=phase)


def _position_extension(record: VitalsObservation, ctx: MappingContext) -> list[JsonObject]:
    if record.position is None:
        return []
    return [
        {
            "url": BODY_POSITION_EXTENSION,
            "valueCodeableConcept": term(POSITIONS, record.position, ctx),
        }
    ]
