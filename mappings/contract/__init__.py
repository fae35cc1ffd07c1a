"""The clinic record contract (v1) as typed, strict models.

`parse_submission` and friends turn raw JSON into models or raise a
ContractViolation naming every bad field by its path (e.g. `vitals[1].diastolic`).

    models.py       the records, field by field (structure)
    fields.py       field types: ids, text, date-times with offsets, NPI, codes, item lists
    units.py        measurement units and possible ranges (converted to canonical units)
    care.py         consent, discharge, treatment course, drug product, REMS monitoring
    rules.py        cross-field rules (dose x weight, end >= start, provider references, ...)
    submissions.py  per-record submissions (record + encounter_id + patient_mrn)
    translate.py    pydantic errors -> FieldError(path, plain-words message)
    parse.py        JSON decoding (duplicate keys, NaN) and the parse_* entry points
"""

from __future__ import annotations

from mappings.contract.care import (
    Consent,
    Discharge,
    DrugProduct,
    RemsAssessment,
    RemsMonitoring,
    TreatmentCourse,
)
from mappings.contract.models import (
    Address,
    AdjunctMedication,
    AdverseEventRecord,
    AllergyRecord,
    Contraindications,
    CssrsScreener,
    EncounterSubmission,
    Escort,
    Indication,
    InfusionProcedure,
    IntakeScreening,
    Measurement,
    MedicationRecord,
    MedicationReview,
    Patient,
    Provider,
    VitalsObservation,
)
from mappings.contract.parse import (
    parse_infusion_submission,
    parse_intake_submission,
    parse_medication_review_submission,
    parse_submission,
    parse_vitals_submission,
)
from mappings.contract.submissions import (
    InfusionProcedureSubmission,
    IntakeScreeningSubmission,
    MedicationReviewSubmission,
    VitalsObservationSubmission,
)

__all__ = [
    "Address",
    "AdjunctMedication",
    "AdverseEventRecord",
    "AllergyRecord",
    "Consent",
    "Contraindications",
    "CssrsScreener",
    "Discharge",
    "DrugProduct",
    "EncounterSubmission",
    "Escort",
    "Indication",
    "InfusionProcedure",
    "InfusionProcedureSubmission",
    "IntakeScreening",
    "IntakeScreeningSubmission",
    "Measurement",
    "MedicationRecord",
    "MedicationReview",
    "MedicationReviewSubmission",
    "Patient",
    "Provider",
    "RemsAssessment",
    "RemsMonitoring",
    "TreatmentCourse",
    "VitalsObservation",
    "VitalsObservationSubmission",
    "parse_infusion_submission",
    "parse_intake_submission",
    "parse_medication_review_submission",
    "parse_submission",
    "parse_vitals_submission",
]
