"""The Encounter and its indication Condition, and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import coding, extension, period, resource, term
from mappings.common.lookup import (
    by_identity,
    coding_key,
    ext_value,
    identifier_value,
    obj,
    objs,
    resolve,
    str_field,
)
from mappings.common.narrative import with_narrative
from mappings.context import MappingContext
from mappings.contract import Indication, InfusionProcedure, Provider
from mappings.jsontypes import JsonObject, JsonValue, Resource

EPISODE = "depressive-episode"


def encounter_type_key(infusion: InfusionProcedure | None) -> str:
    if infusion is None:
        return "type-clinic-visit"
    if infusion.medication == "esketamine":
        return "type-esketamine-session"
    if infusion.route == "intramuscular":
        return "type-ketamine-intramuscular"
    return "type-ketamine-infusion"


def map_encounter(
    encounter_id: str,
    patient_mrn: str,
    status: str,
    start: datetime,
    end: datetime | None,
    ctx: MappingContext,
    *,
    providers: Sequence[Provider] = (),
    infusion: InfusionProcedure | None = None,
    has_reason: bool = False,
) -> Resource:
    visit_type = terminology.code("records", "identifier-visit").code
    out = resource(identity.encounter(ctx, encounter_id), ctx, identifier_type=visit_type)
    out["status"] = status
    out["class"] = coding(terminology.code("encounter", "class-ambulatory"), ctx)
    out["type"] = [term("encounter", encounter_type_key(infusion), ctx)]
    out["subject"] = identity.patient(ctx, patient_mrn).ref()
    if providers:
        out["participant"] = [_participant(p, infusion, ctx) for p in providers]
    out["period"] = period(start, end)
    if has_reason:
        condition = identity.indication(ctx, encounter_id)
        out["reasonReference"] = [condition.ref()]
        out["diagnosis"] = [
            {
                "condition": condition.ref(),
                "use": term("encounter", "diagnosis-admission", ctx),
                "rank": 1,
            }
        ]
    out["serviceProvider"] = identity.organization(ctx).ref(ctx.clinic_name)
    return with_narrative(out)


def _participant(
    provider: Provider, infusion: InfusionProcedure | None, ctx: MappingContext
) -> JsonObject:
    key = "participant-other"
    if infusion is not None and infusion.administered_by == provider.provider_id:
        key = "participant-primary"
    elif infusion is not None and infusion.monitored_by == provider.provider_id:
        key = "participant-secondary"
    return {
        "type": [term("encounter", key, ctx)],
        "individual": identity.practitioner(ctx, provider.provider_id).ref(provider.display_name),
    }


def map_indication(
    reason: Indication, encounter_id: str, patient_mrn: str, ctx: MappingContext
) -> Resource:
    """The indication as an encounter-diagnosis Condition.

    A clinic-sent ICD-10-CM code wins over the table's and is marked
    `userSelected`, so the reverse mapping can tell the two apart.
    """
    out = resource(identity.indication(ctx, encounter_id), ctx)
    if reason.episode is not None:
        out["extension"] = [extension(ctx, EPISODE, valueCode=reason.episode)]
    out["clinicalStatus"] = term("indications", "clinical-active", ctx)
    out["verificationStatus"] = term("indications", "verification-confirmed", ctx)
    out["category"] = [term("indications", "category-encounter-diagnosis", ctx)]
    out["code"] = _indication_code(reason, ctx)
    out["subject"] = identity.patient(ctx, patient_mrn).ref()
    out["encounter"] = identity.encounter(ctx, encounter_id).ref()
    return with_narrative(out)


def _indication_code(reason: Indication, ctx: MappingContext) -> JsonObject:
    icd = terminology.systems()["icd10cm"]
    table_codes = terminology.codes("indications", reason.code)
    codings: list[JsonValue] = []
    if reason.icd10 is not None:
        codings.append({"system": icd, "code": reason.icd10, "userSelected": True})
        table_codes = tuple(c for c in table_codes if c.system != icd)
    codings.extend(coding(c, ctx) for c in table_codes)
    if reason.icd10 is None and reason.episode is not None:
        # Major depression with its episode told: one ICD-10-CM code fits (F32.9, F33.9).
        codings.extend(
            coding(c, ctx) for c in terminology.codes("indications", f"episode-{reason.episode}")
        )
    out: JsonObject = {"coding": codings}
    if reason.text is not None:
        out["text"] = reason.text
    return out


def unmap_indication(
    resources: Sequence[Resource], encounter_id: str, ctx: MappingContext
) -> Indication | None:
    found = by_identity(resources, identity.indication(ctx, encounter_id))
    if found is None:
        return None
    code = obj(found.get("code"))
    icd = terminology.systems()["icd10cm"]
    chosen = next(
        (c for c in objs(code.get("coding")) if c.get("system") == icd and c.get("userSelected")),
        None,
    )
    return Indication.model_validate(
        {
            "code": coding_key("indications", code, ctx),
            "icd10": str_field(chosen, "code") if chosen is not None else None,
            "text": str_field(code, "text"),
            "episode": ext_value(found, ctx.extension_url(EPISODE), "valueCode"),
        }
    )


def unmap_encounter_fields(
    resources: Sequence[Resource], encounter_id: str, ctx: MappingContext
) -> JsonObject | None:
    """The encounter-level contract fields, and the ids of its providers in order."""
    found = by_identity(resources, identity.encounter(ctx, encounter_id))
    if found is None:
        return None
    span = obj(found.get("period"))
    provider_system = identity.practitioner(ctx, "-").system
    provider_ids: list[JsonValue] = []
    for participant in objs(found.get("participant")):
        practitioner = resolve(resources, obj(participant.get("individual")))
        if practitioner is not None:
            provider_ids.append(identifier_value(practitioner, provider_system))
    return {
        "status": found.get("status"),
        "start": span.get("start"),
        "end": span.get("end"),
        "provider_ids": provider_ids,
    }
