"""Deterministic identity: identifiers from the clinic's ids, logical ids from those.

An identifier is `{system: <namespace>/sid/<kind>, value: <clinic id>[~<part>...]}`.
`~` cannot occur in a clinic id, so composed values never collide. The logical id
is a hash of resource type, system and value: mapping the same record twice gives
the same id, and no id ever shows an MRN.

The ids of the records inside an encounter (`screening_id`, `procedure_id`, `vitals_id`,
`review_id`) are unique only within their encounter (the contract's "Scope of ids"), so a
record is named by its *record key*, `<encounter_id>~<record id>` (`record_key`): `VS-1`
of two visits is two readings. Records stored before that rule keep the bare id as their
key (`MappingContext.legacy_records`), so the identifiers already on an EHR stay put.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from mappings.context import MappingContext
from mappings.jsontypes import JsonObject

PART_SEPARATOR = "~"

# The record id fields whose ids are scoped by their encounter (contract "Scope of ids").
SCREENING = "screening_id"
PROCEDURE = "procedure_id"
VITALS = "vitals_id"
REVIEW = "review_id"
RECORD_FIELDS = (SCREENING, PROCEDURE, VITALS, REVIEW)


@dataclass(frozen=True)
class Identity:
    """Who a resource is: its type, identifier and the logical id derived from them."""

    resource_type: str
    system: str
    value: str

    @property
    def id(self) -> str:
        digest = hashlib.sha256(
            f"{self.resource_type}|{self.system}|{self.value}".encode()
        ).hexdigest()
        # A leading letter: HAPI refuses client-assigned ids made only of digits.
        return f"k{digest[:39]}"

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"

    @property
    def urn(self) -> str:
        """A stable `urn:uuid:` for this resource inside a transaction Bundle."""
        # The type is part of it: one clinic id may name several resources (the infusion's
        # Procedure, MedicationRequest and MedicationAdministration share INF-...).
        name = f"{self.resource_type}|{self.system}|{self.value}"
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"

    def identifier(self, type_code: str | None = None) -> JsonObject:
        ident: JsonObject = {"system": self.system, "value": self.value}
        if type_code is not None:
            ident = {
                "use": "usual",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": type_code,
                        }
                    ]
                },
                **ident,
            }
        return ident

    def ref(self, display: str | None = None) -> JsonObject:
        out: JsonObject = {"reference": self.reference}
        if display is not None:
            out["display"] = display
        return out


def identity(ctx: MappingContext, resource_type: str, kind: str, *parts: str) -> Identity:
    """The identity of the `kind` resource named by the clinic's id `parts`."""
    return Identity(resource_type, system(ctx, kind), PART_SEPARATOR.join(parts))


def system(ctx: MappingContext, kind: str) -> str:
    """The identifier system of one kind of identifier: `<namespace>/sid/<kind>`."""
    return f"{ctx.namespace}/sid/{kind}"


def record_key(ctx: MappingContext, field: str, encounter_id: str, record_id: str) -> str:
    """What stands for a record in its resources' identifier values: `<encounter_id>~<id>`,
    or the bare id for a record the context lists as stored under the older scheme."""
    if (field, encounter_id, record_id) in ctx.legacy_records:
        return record_id
    return f"{encounter_id}{PART_SEPARATOR}{record_id}"


def record_id_of(key: str) -> str:
    """The clinic's record id in a record key (either form)."""
    return key.rpartition(PART_SEPARATOR)[2]


# One generator per shared resource, so every mapper refers to the same ids.
def patient(ctx: MappingContext, mrn: str) -> Identity:
    return identity(ctx, "Patient", "mrn", mrn)


def encounter(ctx: MappingContext, encounter_id: str) -> Identity:
    return identity(ctx, "Encounter", "encounter", encounter_id)


def practitioner(ctx: MappingContext, provider_id: str) -> Identity:
    return identity(ctx, "Practitioner", "provider", provider_id)


def practitioner_role(ctx: MappingContext, provider_id: str) -> Identity:
    return identity(ctx, "PractitionerRole", "provider-role", provider_id)


def organization(ctx: MappingContext) -> Identity:
    return identity(ctx, "Organization", "clinic", ctx.tenant)


def device(ctx: MappingContext) -> Identity:
    """This adapter as a Device: the transmitter in Provenance, author of automated alerts."""
    return identity(ctx, "Device", "device", ctx.adapter_name)


# The infusion's resources are named by its record key (`record_key`), not its bare id.
def infusion_procedure(ctx: MappingContext, procedure_key: str) -> Identity:
    return identity(ctx, "Procedure", "infusion", procedure_key)


def infusion_administration(ctx: MappingContext, procedure_key: str) -> Identity:
    return identity(ctx, "MedicationAdministration", "infusion", procedure_key)


def infusion_request(ctx: MappingContext, procedure_key: str) -> Identity:
    return identity(ctx, "MedicationRequest", "infusion", procedure_key)


def indication(ctx: MappingContext, encounter_id: str) -> Identity:
    return identity(ctx, "Condition", "indication", encounter_id)


def provenance(ctx: MappingContext, encounter_id: str) -> Identity:
    return identity(ctx, "Provenance", "submission", encounter_id)
