"""Informed consent to the treatment as an R4 Consent, and back.

scope          consentscope#treatment (ppc-5: the patient is named)
category       LOINC 59284-0 Patient Consent
policyRule     v3-ActCode OPTIN (ppc-1 wants a policy or a rule)
dateTime       when the patient signed
provision      permit, from the signature on; its code's text is the treatment consented to
extensions     the off-label disclosure (clinic; no standard element) and the witness
               (R4's own `consent-Witness`)
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings.common import identity
from mappings.common.builders import extension, fhir_datetime, resource, term
from mappings.common.lookup import ext_value, obj, objs, str_field
from mappings.common.people import practitioner_ref, provider_id_of
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import Consent
from mappings.jsontypes import JsonObject, JsonValue, Resource

TABLE = "care"
KIND = "consent"
OFF_LABEL = "off-label-use-disclosed"
WITNESS = "http://hl7.org/fhir/StructureDefinition/consent-Witness"


def consent_identity(ctx: MappingContext, encounter_id: str, consent_id: str) -> identity.Identity:
    return identity.identity(ctx, "Consent", KIND, encounter_id, consent_id)


def map_consent(record: Consent, scope: EncounterScope, ctx: MappingContext) -> Resource:
    out = resource(consent_identity(ctx, scope.encounter_id, record.consent_id), ctx)
    extensions: list[JsonValue] = [
        extension(ctx, OFF_LABEL, valueBoolean=record.off_label_disclosed)
    ]
    if record.witnessed_by is not None:
        witness = practitioner_ref(record.witnessed_by, scope, ctx)
        extensions.append({"url": WITNESS, "valueReference": witness})
    out["extension"] = extensions
    out["status"] = "active"
    out["scope"] = term(TABLE, "consent-scope-treatment", ctx)
    out["category"] = [term(TABLE, "consent-category", ctx)]
    out["patient"] = identity.patient(ctx, scope.patient_mrn).ref()
    out["dateTime"] = fhir_datetime(record.signed_at)
    out["organization"] = [identity.organization(ctx).ref(ctx.clinic_name)]
    out["policyRule"] = term(TABLE, "consent-policy-opt-in", ctx)
    out["provision"] = {
        "type": "permit",
        "period": {"start": fhir_datetime(record.signed_at)},
        "code": [term(TABLE, "consent-treatment", ctx, record.treatment)],
    }
    return out


def unmap_consent(
    resources: Sequence[Resource], scope: EncounterScope, ctx: MappingContext
) -> JsonObject | None:
    system = identity.system(ctx, KIND)
    prefix = scope.encounter_id + identity.PART_SEPARATOR
    found = next(
        (
            r
            for r in resources
            if r.get("resourceType") == "Consent"
            and any(
                i.get("system") == system and str(i.get("value", "")).startswith(prefix)
                for i in objs(r.get("identifier"))
            )
        ),
        None,
    )
    if found is None:
        return None
    value = next(
        str(i["value"]) for i in objs(found.get("identifier")) if i.get("system") == system
    )
    provision = obj(found.get("provision"))
    codes = objs(provision.get("code"))
    witness = ext_value(found, WITNESS, "valueReference")
    return {
        "consent_id": identity.record_id_of(value),
        "signed_at": found.get("dateTime"),
        "treatment": str_field(codes[0], "text") if codes else None,
        "off_label_disclosed": ext_value(found, ctx.extension_url(OFF_LABEL), "valueBoolean"),
        "witnessed_by": provider_id_of(witness, resources, ctx) if witness is not None else None,
    }
