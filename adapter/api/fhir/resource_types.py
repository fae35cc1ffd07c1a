"""The resource types the `/fhir` face serves: every type the mappings write."""

from __future__ import annotations

# Every type the mappings write (see `mappings/`), i.e. every type the store can hold.
SERVED_TYPES = (
    "AdverseEvent",
    "AllergyIntolerance",
    "CarePlan",
    "Condition",
    "Consent",
    "DetectedIssue",
    "Device",
    "Encounter",
    "Flag",
    "Medication",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
)
