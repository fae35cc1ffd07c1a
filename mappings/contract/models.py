"""Pydantic models mirroring the clinic contract field by field.

Attribute names are the contract's JSON names, so a model dumps back to the
document it was parsed from. Field rules live in `fields.py` and `units.py`,
cross-field rules in `rules.py`; the models only wire them in.

Validation context (optional, a dict): `today` (a `date`) enables the "birth date not
in the future" check; `known_provider_ids` (a collection of ids) makes a record that
stands alone check its provider references against it. Without them, both are skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mappings.contract import rules
from mappings.contract.base import ContractModel
from mappings.contract.care import (
    Consent,
    Discharge,
    DrugProduct,
    RemsMonitoring,
    TreatmentCourse,
    care_issues,
    care_references,
)
from mappings.contract.fields import (
    BirthDate,
    ClinicId,
    Country,
    DateTime,
    Email,
    Gad7,
    Icd10,
    Item03,
    Item04,
    Npi,
    Number,
    Pcl5,
    Phq9,
    RxNorm,
    Text,
)
from mappings.contract.translate import Issue, contract_error
from mappings.contract.units import (
    BLOOD_PRESSURE_DIASTOLIC,
    BLOOD_PRESSURE_SYSTOLIC,
    HEART_RATE,
    HEIGHT,
    RESPIRATORY_RATE,
    SPO2,
    TEMPERATURE,
    WEIGHT,
    measured_as,
)

__all__ = ["ClinicId", "Item03", "Item04", "Text"]

Route = Literal["intravenous", "intranasal", "intramuscular"]
AdjunctRoute = Literal[
    "intravenous", "intranasal", "intramuscular", "oral", "subcutaneous", "sublingual"
]
Severity = Literal["mild", "moderate", "severe"]


def _raise_if(issues: list[Issue]) -> None:
    if issues:
        raise contract_error(*issues)


def _known_providers(info: ValidationInfo) -> Collection[str] | None:
    context = info.context if isinstance(info.context, dict) else {}
    known = context.get(rules.KNOWN_PROVIDERS)
    return None if known is None else frozenset(known)


class Measurement(ContractModel):
    value: Number
    unit: str


class Address(ContractModel):
    line: list[Text] | None = None
    city: Text | None = None
    state: Text | None = None
    postal_code: Text | None = None
    country: Country | None = None

    @field_validator("line", mode="after")
    @classmethod
    def _no_lines_is_none_given(cls, value: list[str] | None) -> list[str] | None:
        return value or None


class Patient(ContractModel):
    mrn: ClinicId
    given_name: Text
    family_name: Text
    birth_date: BirthDate
    sex: Literal["female", "male", "other", "unknown"]
    phone: Text | None = None
    email: Email | None = None
    address: Address | None = None

    @field_validator("address", mode="after")
    @classmethod
    def _empty_address_is_none_given(cls, value: Address | None) -> Address | None:
        # An address with no parts says nothing; FHIR would carry no address for it.
        return value if value is not None and value.model_dump(exclude_none=True) else None


class Provider(ContractModel):
    provider_id: ClinicId
    name: Text | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    role: Literal[
        "anesthesiologist", "nurse_anesthetist", "registered_nurse", "psychiatrist", "physician"
    ]
    npi: Npi | None = None
    acls_certified: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.name is None and self.family_name is None:
            _raise_if([("family_name", "required when name is not given (send one or both)")])
        return self

    @property
    def display_name(self) -> str:
        """The name as shown: `name` when sent, else given and family names."""
        if self.name is not None:
            return self.name
        return " ".join(n for n in (self.given_name, self.family_name) if n is not None)


class Indication(ContractModel):
    code: Literal[
        "treatment_resistant_depression",
        "major_depressive_disorder",
        "ptsd",
        "generalized_anxiety_disorder",
        "suicidal_ideation",
        "neuropathic_pain",
        "crps",
        "other",
    ]
    icd10: Icd10 | None = None
    text: Text | None = None
    episode: Literal["single", "recurrent"] | None = None

    @model_validator(mode="after")
    def _text_for_other(self) -> Self:
        _raise_if(rules.indication_issues(self))
        return self


class CssrsScreener(ContractModel):
    wish_to_be_dead: bool
    non_specific_active_thoughts: bool
    active_ideation_with_method: bool
    active_ideation_with_intent: bool
    active_ideation_with_plan: bool
    suicidal_behavior_past_3_months: bool


class Contraindications(ContractModel):
    uncontrolled_hypertension: bool
    unstable_cardiovascular_disease: bool
    uncontrolled_thyroid_disease: bool
    elevated_intracranial_pressure: bool
    history_of_psychosis: bool
    bipolar_manic_phase: bool
    uncontrolled_glaucoma: bool
    pregnant: bool
    prior_ketamine_adverse_reaction: bool


class Escort(ContractModel):
    name: Text | None = None
    phone: Text | None = None
    confirmed: bool


class IntakeScreening(ContractModel):
    screening_id: ClinicId
    completed_at: DateTime
    phq9: Phq9 | None = None
    gad7: Gad7 | None = None
    pcl5: Pcl5 | None = None
    cssrs: CssrsScreener | None = None
    pain_score: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None
    contraindications: Contraindications
    bipolar_disorder: bool | None = None
    last_oral_intake_at: DateTime | None = None
    escort: Escort | None = None
    notes: Text | None = None


class AdjunctMedication(ContractModel):
    name: Text
    dose_mg: Annotated[Number, Field(gt=0, le=10_000)]
    route: AdjunctRoute
    given_at: DateTime
    rxnorm: RxNorm | None = None


class AdverseEventRecord(ContractModel):
    type: Literal[
        "nausea",
        "vomiting",
        "dissociation",
        "hypertension",
        "tachycardia",
        "hallucination",
        "emergence_reaction",
        "oxygen_desaturation",
        "excessive_sedation",
        "other",
    ]
    text: Text | None = None
    severity: Severity
    onset: DateTime | None = None
    resolved: bool | None = None
    treatment: Text | None = None

    @model_validator(mode="after")
    def _text_for_other(self) -> Self:
        _raise_if(rules.adverse_event_issues(self))
        return self


class InfusionProcedure(ContractModel):
    procedure_id: ClinicId
    medication: Literal["ketamine", "esketamine"]
    route: Route
    status: Literal["completed", "stopped", "not_done"]
    status_reason: Text | None = None
    start: DateTime | None = None
    end: DateTime | None = None
    recovery_end: DateTime | None = None
    weight: Annotated[Measurement, measured_as(WEIGHT)] | None = None
    dose_mg_per_kg: Annotated[Number, Field(gt=0, le=5)] | None = None
    total_dose_mg: Annotated[Number, Field(gt=0, le=1000)]
    administered_by: ClinicId | None = None
    monitored_by: ClinicId | None = None
    adjunct_medications: list[AdjunctMedication] | None = None
    adverse_events: list[AdverseEventRecord] | None = None
    notes: Text | None = None
    drug_product: DrugProduct | None = None

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> Self:
        issues = rules.infusion_issues(self)
        known = _known_providers(info)
        if known is not None:
            refs = [("administered_by", self.administered_by), ("monitored_by", self.monitored_by)]
            issues += rules.provider_reference_issues(refs, known, "the clinic's known providers")
        _raise_if(issues)
        return self


class VitalsObservation(ContractModel):
    vitals_id: ClinicId
    taken_at: DateTime
    phase: Literal["baseline", "pre_infusion", "intra_infusion", "post_infusion", "discharge"]
    systolic: Annotated[Measurement, measured_as(BLOOD_PRESSURE_SYSTOLIC)] | None = None
    diastolic: Annotated[Measurement, measured_as(BLOOD_PRESSURE_DIASTOLIC)] | None = None
    heart_rate: Annotated[Measurement, measured_as(HEART_RATE)] | None = None
    respiratory_rate: Annotated[Measurement, measured_as(RESPIRATORY_RATE)] | None = None
    spo2: Annotated[Measurement, measured_as(SPO2)] | None = None
    temperature: Annotated[Measurement, measured_as(TEMPERATURE)] | None = None
    weight: Annotated[Measurement, measured_as(WEIGHT)] | None = None
    height: Annotated[Measurement, measured_as(HEIGHT)] | None = None
    position: Literal["sitting", "supine", "standing"] | None = None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        _raise_if(rules.vitals_issues(self))
        return self


class MedicationRecord(ContractModel):
    name: Text
    status: Literal["active", "on_hold", "stopped"]
    rxnorm: RxNorm | None = None
    dose: Text | None = None
    frequency: Text | None = None
    instruction: Literal["continue", "hold", "stop"] = "continue"
    note: Text | None = None


class AllergyRecord(ContractModel):
    substance: Text
    reaction: Text | None = None
    severity: Severity | None = None
    rxnorm: RxNorm | None = None


class MedicationReview(ContractModel):
    review_id: ClinicId
    reviewed_at: DateTime
    reviewed_by: ClinicId | None = None
    medications: list[MedicationRecord]
    allergies: list[AllergyRecord] | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _reviewer_is_known(self, info: ValidationInfo) -> Self:
        known = _known_providers(info)
        if known is not None:
            refs = [("reviewed_by", self.reviewed_by)]
            _raise_if(rules.provider_reference_issues(refs, known, "the clinic's known providers"))
        return self


class EncounterSubmission(ContractModel):
    encounter_id: ClinicId
    patient: Patient
    status: Literal["planned", "in-progress", "finished", "cancelled"]
    start: DateTime
    end: DateTime | None = None
    reason: Indication | None = None
    providers: list[Provider] | None = None
    intake_screening: IntakeScreening | None = None
    infusion: InfusionProcedure | None = None
    vitals: list[VitalsObservation] | None = None
    medication_review: MedicationReview | None = None
    consent: Consent | None = None
    discharge: Discharge | None = None
    course: TreatmentCourse | None = None
    rems_monitoring: RemsMonitoring | None = None

    @field_validator("providers", "vitals", mode="after")
    @classmethod
    def _empty_list_is_none_given(cls, value: list[object] | None) -> list[object] | None:
        # "providers": [] and no "providers" say the same thing; one form keeps the model
        # equal to what comes back from FHIR, where nothing marks an empty list.
        return value or None

    @model_validator(mode="after")
    def _cross_record_rules(self) -> Self:
        known = {p.provider_id for p in self.providers or ()}
        staff = rules.provider_reference_issues(
            care_references(self), known, "this encounter's providers"
        )
        _raise_if(rules.encounter_issues(self) + care_issues(self) + staff)
        return self
