"""The answer of `GET /clinic/patients/{mrn}`, as models: they publish its OpenAPI schema
(each field described) and check every answer against it before it leaves.

Fields follow the clinic contract's Patient, Medication and allergy objects; each item adds
where it came from (`source`, `updated_at`, `fhir`). Values the EHR wrote may be missing
where the contract requires them (an EHR's medication without a name), hence optional.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Annotated[
    Literal["clinic", "ehr"],
    Field(
        description="Who wrote the current version: `clinic` (the clinic API) or `ehr` "
        "(taken from the EHR by the pull: an EHR's edit, or a resource the EHR created)"
    ),
]
UpdatedAt = Annotated[
    str, Field(description="When the adapter's store last changed it (ISO 8601, with offset)")
]
FhirReference = Annotated[
    str,
    Field(description="The FHIR resource behind it on `/fhir`: `<Type>/<logical id>`"),
]


class _Item(BaseModel):
    """Each item's own fields come first; `source`, `updated_at` and `fhir` close it."""

    model_config = ConfigDict(extra="forbid")


class AddressView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: list[str] | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = Field(None, description="ISO 3166 alpha-2, as the contract's")


class PatientView(_Item):
    """The contract's Patient fields from the Patient's current version."""

    mrn: str = Field(description="The clinic's medical record number")
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = Field(
        None, description="`YYYY-MM-DD`; an EHR's edit may hold a partial date"
    )
    sex: str | None = Field(None, description="`female`, `male`, `other` or `unknown`")
    phone: str | None = None
    email: str | None = None
    address: AddressView | None = None
    source: Source
    updated_at: UpdatedAt
    fhir: FhirReference


class MedicationView(_Item):
    """One medication of the current list, as the contract's Medication object."""

    name: str | None = Field(description="The drug as named (null if the EHR named none)")
    status: Literal["active", "on_hold", "stopped"] = Field(
        description="The clinic's status as sent; for the EHR's entries, from the FHIR "
        "status: on-hold, intended and draft are `on_hold`; stopped, completed, not-taken, "
        "cancelled and entered-in-error `stopped`; active, unknown and anything else `active`"
    )
    rxnorm: str | None = Field(None, description="RxNorm code, when one is recorded")
    dose: str | None = None
    frequency: str | None = None
    instruction: Literal["continue", "hold", "stop"] | None = Field(
        None, description="The clinic's infusion-day instruction; null for the EHR's entries"
    )
    note: str | None = None
    fhir_status: str | None = Field(
        None, description="The FHIR status code itself (the contract's three fold several)"
    )
    source: Source
    updated_at: UpdatedAt
    fhir: FhirReference


class AllergyView(_Item):
    """One allergy, as the contract's allergy object."""

    substance: str | None = Field(description="The allergen as named")
    reaction: str | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None
    rxnorm: str | None = None
    source: Source
    updated_at: UpdatedAt
    fhir: FhirReference


class ReviewView(_Item):
    """The medication review the clinic's part of the lists comes from (the latest one)."""

    review_id: str
    reviewed_at: str | None = None
    source: Source
    updated_at: UpdatedAt
    fhir: FhirReference


class AlertView(_Item):
    """One active alert: a Flag or a DetectedIssue about the patient."""

    type: Literal["Flag", "DetectedIssue"]
    code: str | None = Field(
        None, description="The alert's first code (e.g. `flag-suicide-risk-high`)"
    )
    system: str | None = Field(None, description="The code's system")
    display: str | None = Field(None, description="What the alert says, in words")
    severity: str | None = Field(
        None, description="DetectedIssue: `high`, `moderate` or `low`; null for a Flag"
    )
    status: str | None = Field(None, description="The FHIR status (`active` for a Flag)")
    raised_at: str | None = Field(
        None, description="When it was raised: the Flag's period start, the issue's time"
    )
    detail: str | None = Field(None, description="DetectedIssue: the rule, the values, the source")
    implicated: list[str] = Field(
        default_factory=list, description="The resources it implicates, as `<Type>/<id>` on /fhir"
    )
    source: Source
    updated_at: UpdatedAt
    fhir: FhirReference


class PatientRecordView(BaseModel):
    """The patient's current record, from the clinic and from the EHR."""

    model_config = ConfigDict(extra="forbid")

    patient: PatientView
    medication_review: ReviewView | None = Field(
        description="The latest medication review (by `reviewed_at`); null when none was sent"
    )
    medications: list[MedicationView] = Field(
        description="The latest review's medications in its order, then the EHR's own "
        "MedicationStatements and MedicationRequests"
    )
    allergies: list[AllergyView] = Field(
        description="The latest review's allergies, then the EHR's current ones"
    )
    no_known_allergies: bool = Field(
        description='True when "no known allergies" was stated (by the latest review or '
        "the EHR) and no allergy is listed; `allergies: []` with false means none recorded"
    )
    alerts: list[AlertView] = Field(
        description="The active Flags and DetectedIssues, newest first: risk and critical-vital "
        "Flags, the protocol's and the interaction screens' DetectedIssues, the EHR's own"
    )
