"""The contract's care records: consent, discharge, the treatment course, the drug product
given and the Spravato REMS monitoring of an esketamine session.

Each is optional (clinic software that does not send them keeps working); when present,
each field is checked like every other field of the contract and a bad value is refused
naming it. Cross-record rules (a REMS record needs an esketamine session, a witness must be
one of the encounter's providers) are in `care_issues`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from mappings.contract.base import ContractModel
from mappings.contract.fields import ClinicId, DateTime, Text, ValidDate
from mappings.contract.translate import LOT_PATTERN, NDC_PATTERN, Issue, contract_error

if TYPE_CHECKING:
    from mappings.contract.models import EncounterSubmission

Ndc = Annotated[str, StringConstraints(pattern=NDC_PATTERN)]
LotNumber = Annotated[str, StringConstraints(pattern=LOT_PATTERN)]
Session = Annotated[int, Field(ge=1, le=1000, strict=True)]
DischargeInstruction = Literal[
    "no_driving_24h", "no_alcohol_24h", "no_major_decisions_24h", "crisis_line_988"
]


class Consent(ContractModel):
    """The patient's informed consent to the treatment, with the off-label disclosure."""

    consent_id: ClinicId
    signed_at: DateTime
    treatment: Text
    off_label_disclosed: bool
    witnessed_by: ClinicId | None = None


class Discharge(ContractModel):
    fit_to_leave_at: DateTime
    escort_confirmed: bool
    instructions_given: list[DischargeInstruction]
    discharged_by: ClinicId | None = None

    @model_validator(mode="after")
    def _each_instruction_once(self) -> Self:
        seen = [
            i for n, i in enumerate(self.instructions_given) if i in self.instructions_given[:n]
        ]
        if seen:
            raise contract_error(("instructions_given", f"{seen[0]} is listed twice"))
        return self


class TreatmentCourse(ContractModel):
    """The series this encounter belongs to: "session 4 of 6" of an induction series."""

    course_id: ClinicId
    phase: Literal["induction", "maintenance"]
    session_number: Session
    planned_sessions: Session | None = None

    @model_validator(mode="after")
    def _session_within_plan(self) -> Self:
        planned = self.planned_sessions
        if planned is not None and self.session_number > planned:
            message = f"session {self.session_number} is beyond the {planned} planned sessions"
            raise contract_error(("session_number", message))
        return self


class DrugProduct(ContractModel):
    """The package the dose came from: a Schedule III drug's NDC, lot and expiry."""

    ndc: Ndc
    lot_number: LotNumber
    expiration_date: ValidDate


class RemsAssessment(ContractModel):
    """One post-dose check of the REMS Patient Monitoring Form, at its time."""

    assessed_at: DateTime
    sedation: bool
    dissociation: bool


class RemsMonitoring(ContractModel):
    """What the Spravato REMS Patient Monitoring Form asks beyond the session's records."""

    assessments: Annotated[list[RemsAssessment], Field(min_length=1, max_length=100)]


def care_issues(encounter: EncounterSubmission) -> list[Issue]:
    """The care records' rules that look at the rest of the encounter."""
    issues: list[Issue] = []
    infusion = encounter.infusion
    rems = encounter.rems_monitoring
    if rems is not None and (infusion is None or infusion.medication != "esketamine"):
        issues.append(("rems_monitoring", "only for an esketamine session (infusion.medication)"))
    if rems is not None and infusion is not None and infusion.start is not None:
        for index, check in enumerate(rems.assessments):
            if check.assessed_at < infusion.start:
                message = (
                    f"assessed_at {check.assessed_at.isoformat()} is before the dose "
                    f"(infusion.start {infusion.start.isoformat()})"
                )
                issues.append((f"rems_monitoring.assessments[{index}].assessed_at", message))
    if encounter.discharge is not None and encounter.discharge.fit_to_leave_at < encounter.start:
        issues.append(("discharge.fit_to_leave_at", "is before the encounter's start"))
    return issues


def care_references(encounter: EncounterSubmission) -> list[tuple[str, object]]:
    """The care records' provider references, for the encounter's provider check."""
    refs: list[tuple[str, object]] = []
    if encounter.consent is not None:
        refs.append(("consent.witnessed_by", encounter.consent.witnessed_by))
    if encounter.discharge is not None:
        refs.append(("discharge.discharged_by", encounter.discharge.discharged_by))
    return refs
