"""The per-record submissions: one record sent alone, with its encounter and patient.

`POST /clinic/intake-screenings`, `/clinic/infusions`, `/clinic/vitals` and
`/clinic/medication-reviews` carry one record plus `encounter_id` and `patient_mrn`.
Such a record carries no providers of its own: its `administered_by`, `monitored_by` and
`reviewed_by` are checked only when the caller passes `known_provider_ids` (the adapter
passes the providers it has stored for the clinic), else accepted as sent.
"""

from __future__ import annotations

from mappings.contract.fields import ClinicId
from mappings.contract.models import (
    InfusionProcedure,
    IntakeScreening,
    MedicationReview,
    VitalsObservation,
)


class IntakeScreeningSubmission(IntakeScreening):
    encounter_id: ClinicId
    patient_mrn: ClinicId


class InfusionProcedureSubmission(InfusionProcedure):
    encounter_id: ClinicId
    patient_mrn: ClinicId


class VitalsObservationSubmission(VitalsObservation):
    encounter_id: ClinicId
    patient_mrn: ClinicId


class MedicationReviewSubmission(MedicationReview):
    encounter_id: ClinicId
    patient_mrn: ClinicId
