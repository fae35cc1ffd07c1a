"""A whole encounter submission to FHIR resources, and FHIR resources back to it.

`map_submission` calls one mapper per record type and adds the encounter-level
resources and a Provenance; `unmap_submission` does the reverse from resources
found by identifier, as this adapter wrote them or as an EHR returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mappings.care import map_care, session_extension, unmap_care
from mappings.common import identity
from mappings.common.lookup import by_identity, identifier_value
from mappings.common.narrative import with_narratives
from mappings.common.people import (
    map_device,
    map_organization,
    map_patient,
    map_provider,
    unmap_patient,
    unmap_provider,
)
from mappings.common.provenance import map_provenance
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.visit import (
    map_encounter,
    map_indication,
    unmap_encounter_fields,
    unmap_indication,
)
from mappings.infusion.procedure import map_infusion, unmap_infusion
from mappings.intake.screening import map_intake, unmap_intake
from mappings.jsontypes import JsonValue, Resource
from mappings.medication_review.review import map_medication_review, unmap_medication_review
from mappings.vitals.readings import map_vitals, unmap_vitals


def scope_of(sub: EncounterSubmission) -> EncounterScope:
    return EncounterScope(
        encounter_id=sub.encounter_id,
        patient_mrn=sub.patient.mrn,
        providers=tuple(sub.providers or ()),
        infusion=sub.infusion,
    )


def map_submission(sub: EncounterSubmission, ctx: MappingContext) -> list[Resource]:
    """Every FHIR resource of one encounter submission, in a stable order."""
    scope = scope_of(sub)
    out: list[Resource] = [map_organization(ctx), map_device(ctx), map_patient(sub.patient, ctx)]
    for provider in scope.providers:
        out.extend(map_provider(provider, ctx))
    encounter = map_encounter(
        sub.encounter_id,
        sub.patient.mrn,
        sub.status,
        sub.start,
        sub.end,
        ctx,
        providers=scope.providers,
        infusion=sub.infusion,
        has_reason=sub.reason is not None,
    )
    if sub.course is not None:
        encounter["extension"] = [session_extension(sub.course, sub.patient.mrn, ctx)]
    out.append(encounter)
    if sub.reason is not None:
        out.append(map_indication(sub.reason, sub.encounter_id, sub.patient.mrn, ctx))
    out.extend(map_records(sub, scope, ctx))
    out.extend(with_narratives(map_care(sub, scope, ctx)))
    clinical = out[3:]
    out.append(map_provenance(sub.encounter_id, clinical, recorded_at(sub), author_of(sub), ctx))
    return out


def map_records(
    sub: EncounterSubmission, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    out: list[Resource] = []
    if sub.intake_screening is not None:
        out.extend(map_intake(sub.intake_screening, scope, ctx))
    if sub.infusion is not None:
        out.extend(map_infusion(sub.infusion, scope, ctx))
    if sub.vitals:
        out.extend(map_vitals(sub.vitals, scope, ctx))
    if sub.medication_review is not None:
        out.extend(map_medication_review(sub.medication_review, scope, ctx))
    return out


def recorded_at(sub: EncounterSubmission) -> datetime:
    """The newest time the submission carries: Provenance.recorded without a clock.

    Taking it from the records (not from "now") keeps an identical resend
    byte-identical, so it creates no new versions anywhere.
    """
    times: list[datetime] = [sub.start]
    times.extend(t for t in (sub.end,) if t is not None)
    if sub.intake_screening is not None:
        times.append(sub.intake_screening.completed_at)
    if sub.infusion is not None:
        inf = sub.infusion
        times.extend(t for t in (inf.start, inf.end, inf.recovery_end) if t is not None)
    times.extend(v.taken_at for v in sub.vitals or ())
    if sub.medication_review is not None:
        times.append(sub.medication_review.reviewed_at)
    times.extend(care_times(sub))
    return max(times)


def care_times(sub: EncounterSubmission) -> list[datetime]:
    times = [sub.consent.signed_at] if sub.consent is not None else []
    if sub.discharge is not None:
        times.append(sub.discharge.fit_to_leave_at)
    if sub.rems_monitoring is not None:
        times.extend(check.assessed_at for check in sub.rems_monitoring.assessments)
    return times


def author_of(sub: EncounterSubmission) -> str | None:
    if sub.infusion is not None and sub.infusion.administered_by is not None:
        return sub.infusion.administered_by
    if sub.medication_review is not None:
        return sub.medication_review.reviewed_by
    return None


def unmap_submission(resources: Sequence[Resource], ctx: MappingContext) -> EncounterSubmission:
    """The encounter submission these resources came from (ValueError if none is there)."""
    encounter_system = identity.encounter(ctx, "-").system
    encounter_id = _only_identifier(resources, "Encounter", encounter_system)
    mrn = _only_identifier(resources, "Patient", identity.patient(ctx, "-").system)
    fields = unmap_encounter_fields(resources, encounter_id, ctx)
    patient = unmap_patient(resources, mrn, ctx)
    if fields is None or patient is None:
        raise ValueError("no Encounter or Patient for this submission")
    listed = fields.pop("provider_ids")
    provider_ids = [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []
    providers = [unmap_provider(resources, pid, ctx) for pid in provider_ids]
    scope = EncounterScope(encounter_id, mrn, tuple(p for p in providers if p is not None))
    infusion = unmap_infusion(resources, scope, ctx)
    scope = EncounterScope(encounter_id, mrn, scope.providers, infusion)
    document: dict[str, JsonValue | object] = {
        "encounter_id": encounter_id,
        "patient": patient,
        **fields,
        "reason": unmap_indication(resources, encounter_id, ctx),
        "providers": list(scope.providers) or None,
        "intake_screening": unmap_intake(resources, scope, ctx),
        "infusion": infusion,
        "vitals": unmap_vitals(resources, scope, ctx) or None,
        "medication_review": unmap_medication_review(resources, scope, ctx),
        **unmap_care(resources, scope, _encounter_of(resources, encounter_id, ctx), ctx),
    }
    return EncounterSubmission.model_validate(document)


def _encounter_of(
    resources: Sequence[Resource], encounter_id: str, ctx: MappingContext
) -> Resource | None:
    return by_identity(resources, identity.encounter(ctx, encounter_id))


def _only_identifier(resources: Sequence[Resource], resource_type: str, system: str) -> str:
    values = {
        value
        for r in resources
        if r.get("resourceType") == resource_type
        and (value := identifier_value(r, system)) is not None
    }
    if len(values) != 1:
        raise ValueError(f"expected one {resource_type} under {system}, found {len(values)}")
    return values.pop()
