"""What a mapping needs to know besides the record: namespace, tenant, labels, policy.

Everything here is configuration supplied by the caller; defaults are the ones
documented in the clinical terminology notes (section 3d for vital-sign alerts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
class VitalThresholds:
    """Clinic alert policy for vital-sign interpretation (terminology section 3d)."""

    systolic_high: float = 140
    diastolic_high: float = 90
    systolic_critical: float = 180
    diastolic_critical: float = 110
    systolic_rise_critical: float = 40
    diastolic_rise_critical: float = 25
    heart_rate_high: float = 110
    heart_rate_low: float = 50
    spo2_low: float = 92
    spo2_critical_low: float = 90
    respiratory_rate_low: float = 10
    respiratory_rate_high: float = 24
    fasting_hours_required: float = 6


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
    thresholds: VitalThresholds = field(default_factory=VitalThresholds)
    adapter_name: str = "ketamine-fhir-adapter"
    legacy_records: frozenset[tuple[str, str, str]] = frozenset()

    @property
    def code_system(self) -> str:
        """The clinic's own CodeSystem for concepts with no standard code."""
        return f"{self.namespace}/CodeSystem/ketamine-clinic"

    def extension_url(self, name: str) -> str:
        return f"{self.namespace}/StructureDefinition/{name}"
