"""What a mapping needs to know besides the record: namespace, tenant, labels, policy.

Everything here is configuration supplied by the caller; the clinic's protocol defaults
to the one shipped in `mappings/protocol/defaults.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mappings.protocol.model import ClinicProtocol, VitalThresholds, default_protocol

__all__ = ["DEFAULT_NAMESPACE", "MappingContext", "SecurityLabels", "VitalThresholds"]

DEFAULT_NAMESPACE = "https://fhir.example-clinic.org"


@dataclass(frozen=True)
class SecurityLabels:
    """Labels put in every resource's `meta.security` so an EHR can segment it.

    `confidentiality` is a v3-Confidentiality code (R = restricted); `sensitivity`
    holds v3-ActCode information-sensitivity codes (PSY = psychiatry disorder
    information sensitivity, BH = behavioral health information sensitivity).
    """

    confidentiality: str = "R"
    sensitivity: tuple[str, ...] = ("PSY", "BH")


@dataclass(frozen=True)
class MappingContext:
    """Configuration for one tenant's mappings.

    `namespace` is the clinic-controlled base URI under which every identifier
    system and local code system lives; it must never be reused by another clinic.

    `legacy_records` names the records whose identifiers keep the form they had before
    record ids were scoped by their encounter: `(field, encounter_id, record_id)`, e.g.
    `("vitals_id", "E-1", "VS-1")`. A store upgraded from that scheme lists the records it
    already holds (and has pushed) there, so a resend updates them in place instead of
    creating copies under new identifiers; see `mappings.common.identity.record_key`.
    """

    namespace: str = DEFAULT_NAMESPACE
    tenant: str = "default"
    clinic_name: str = "Ketamine infusion clinic"
    security: SecurityLabels = field(default_factory=SecurityLabels)
    protocol: ClinicProtocol = field(default_factory=default_protocol)
    """The clinic's protocol (`mappings.protocol`): dose rules, observation times, the
    monitor's qualification, vital-sign limits per phase, fasting hours."""
    adapter_name: str = "ketamine-fhir-adapter"
    legacy_records: frozenset[tuple[str, str, str]] = frozenset()

    @property
    def code_system(self) -> str:
        """The clinic's own CodeSystem for concepts with no standard code."""
        return f"{self.namespace}/CodeSystem/ketamine-clinic"

    def extension_url(self, name: str) -> str:
        return f"{self.namespace}/StructureDefinition/{name}"
