"""Patient, clinic Organization, Practitioner(+Role) and the adapter Device, and back."""

from __future__ import annotations

from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import coding, fhir_date, resource, term
from mappings.common.lookup import (
    by_identity,
    ext_value,
    first_coding_key,
    identifier_value,
    obj,
    objs,
    resolve,
    str_field,
)
from mappings.common.narrative import with_narrative, with_narratives
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import Address, Patient, Provider
from mappings.jsontypes import JsonObject, JsonValue, Resource

ACLS_EXTENSION = "acls-certified"


def map_patient(patient: Patient, ctx: MappingContext) -> Resource:
    mrn_type = terminology.code("records", "identifier-mrn").code
    out = resource(identity.patient(ctx, patient.mrn), ctx, identifier_type=mrn_type)
    out["name"] = [
        {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
    ]
    telecom: list[JsonValue] = []
    if patient.phone is not None:
        telecom.append({"system": "phone", "value": patient.phone})
    if patient.email is not None:
        telecom.append({"system": "email", "value": patient.email})
    if telecom:
        out["telecom"] = telecom
    out["gender"] = patient.sex
    out["birthDate"] = fhir_date(patient.birth_date)
    if patient.address is not None:
        out["address"] = [_address(patient.address)]
    out["managingOrganization"] = identity.organization(ctx).ref(ctx.clinic_name)
    return with_narrative(out)


def _address(address: Address) -> JsonObject:
    lines: list[JsonValue] | None = None if address.line is None else [*address.line]
    parts: dict[str, JsonValue] = {
        "line": lines,
        "city": address.city,
        "state": address.state,
        "postalCode": address.postal_code,
        "country": address.country,
    }
    return {key: value for key, value in parts.items() if value is not None}


def map_organization(ctx: MappingContext) -> Resource:
    out = resource(identity.organization(ctx), ctx)
    out["active"] = True
    out["name"] = ctx.clinic_name
    return with_narrative(out)


def map_device(ctx: MappingContext) -> Resource:
    """The adapter itself, the transmitter named in every Provenance."""
    out = resource(identity.device(ctx), ctx)
    out["deviceName"] = [{"name": ctx.adapter_name, "type": "user-friendly-name"}]
    out["type"] = term("records", "device-adapter", ctx)
    out["owner"] = identity.organization(ctx).ref(ctx.clinic_name)
    return with_narrative(out)


def map_provider(provider: Provider, ctx: MappingContext) -> list[Resource]:
    """A Practitioner (NPI, ACLS) and a PractitionerRole (SNOMED role, NUCC specialty)."""
    return with_narratives([_practitioner(provider, ctx), _practitioner_role(provider, ctx)])


def _practitioner(provider: Provider, ctx: MappingContext) -> Resource:
    ident = identity.practitioner(ctx, provider.provider_id)
    out = resource(ident, ctx)
    if provider.acls_certified is not None:
        out["extension"] = [
            {"url": ctx.extension_url(ACLS_EXTENSION), "valueBoolean": provider.acls_certified}
        ]
    if provider.npi is not None:
        npi_type = terminology.code("records", "identifier-npi")
        out["identifier"] = [
            ident.identifier(),
            {
                "type": {"coding": [coding(npi_type, ctx)]},
                "system": terminology.systems()["npi"],
                "value": provider.npi,
            },
        ]
    out["active"] = True
    out["name"] = [_provider_name(provider)]
    if provider.acls_certified:
        out["qualification"] = [{"code": term("provider_roles", "acls", ctx, "ACLS")}]
    return out


def _provider_name(provider: Provider) -> JsonObject:
    name: JsonObject = {}
    if provider.name is not None:
        name["text"] = provider.name
    if provider.family_name is not None:
        name["family"] = provider.family_name
    if provider.given_name is not None:
        name["given"] = [provider.given_name]
    return name


def _practitioner_role(provider: Provider, ctx: MappingContext) -> Resource:
    out = resource(identity.practitioner_role(ctx, provider.provider_id), ctx)
    out["active"] = True
    out["practitioner"] = identity.practitioner(ctx, provider.provider_id).ref(
        provider.display_name
    )
    out["organization"] = identity.organization(ctx).ref(ctx.clinic_name)
    out["code"] = [term("provider_roles", provider.role, ctx)]
    specialty = f"specialty-{provider.role}"
    if terminology.has("provider_roles", specialty):
        out["specialty"] = [term("provider_roles", specialty, ctx)]
    return out


def unmap_patient(resources: Sequence[Resource], mrn: str, ctx: MappingContext) -> Patient | None:
    found = by_identity(resources, identity.patient(ctx, mrn))
    if found is None:
        return None
    return Patient.model_validate(patient_fields(found, mrn))


def patient_fields(found: Resource, mrn: str) -> JsonObject:
    """The contract's Patient fields read from a Patient resource, not yet validated: an
    EHR's edit may hold what the contract cannot (a partial birth date, no given name)."""
    name = _first(found.get("name"))
    given = name.get("given")
    telecom_list: list[JsonValue] = list(objs(found.get("telecom")))
    return {
        "mrn": mrn,
        "given_name": given[0] if isinstance(given, list) and given else None,
        "family_name": name.get("family"),
        "birth_date": found.get("birthDate"),
        "sex": found.get("gender"),
        "phone": _telecom(telecom_list, "phone"),
        "email": _telecom(telecom_list, "email"),
        "address": _unmap_address(found.get("address")),
    }


def _first(value: JsonValue) -> JsonObject:
    found = objs(value)
    return found[0] if found else {}


def _telecom(telecom: list[JsonValue], system: str) -> str | None:
    for entry in telecom:
        if isinstance(entry, dict) and entry.get("system") == system:
            return str_field(entry, "value")
    return None


def _unmap_address(value: JsonValue) -> JsonObject | None:
    address = _first(value)
    if not address:
        return None
    names = {
        "line": "line",
        "city": "city",
        "state": "state",
        "postalCode": "postal_code",
        "country": "country",
    }
    return {ours: address[theirs] for theirs, ours in names.items() if theirs in address}


def unmap_provider(
    resources: Sequence[Resource], provider_id: str, ctx: MappingContext
) -> Provider | None:
    practitioner = by_identity(resources, identity.practitioner(ctx, provider_id))
    role = by_identity(resources, identity.practitioner_role(ctx, provider_id))
    if practitioner is None or role is None:
        return None
    npi_system = terminology.systems()["npi"]
    npi = identifier_value(practitioner, npi_system)
    role_key = first_coding_key("provider_roles", role.get("code"), ctx)
    acls = ext_value(practitioner, ctx.extension_url(ACLS_EXTENSION), "valueBoolean")
    name = _first(practitioner.get("name"))
    given = name.get("given")
    return Provider.model_validate(
        {
            "provider_id": provider_id,
            "name": str_field(name, "text"),
            "family_name": str_field(name, "family"),
            "given_name": given[0] if isinstance(given, list) and given else None,
            "role": role_key,
            "npi": npi,
            "acls_certified": acls,
        }
    )


def practitioner_ref(provider_id: str, scope: EncounterScope, ctx: MappingContext) -> JsonObject:
    """A reference to a provider's Practitioner that also names its identifier.

    A per-record submission (and an EHR that rewrote the reference to its own id)
    may come back without the Practitioner itself: the identifier still says who.
    """
    ident = identity.practitioner(ctx, provider_id)
    out: JsonObject = {"reference": ident.reference, "identifier": ident.identifier()}
    provider = scope.provider(provider_id)
    if provider is not None:
        out["display"] = provider.display_name
    return out


def provider_id_of(
    reference: JsonValue, resources: Sequence[Resource], ctx: MappingContext
) -> str | None:
    """The clinic's provider id behind a Practitioner reference written by `practitioner_ref`
    (or resolvable among `resources`)."""
    system = identity.practitioner(ctx, "-").system
    ref = obj(reference)
    named = obj(ref.get("identifier"))
    if named.get("system") == system:
        return str_field(named, "value")
    target = resolve(resources, ref)
    return identifier_value(target, system) if target is not None else None
