"""What the adapter pulls back from the EHR, and how each type is scoped to our patients.

The pull (and `adapter reconcile`) asks the EHR only about patients the store knows: a
type with a patient search parameter is searched by the EHR's ids of our patients; the
types no patient owns (the clinic, its staff) by the EHR ids of the resources we hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.store.engine import Connection, Engine
from adapter.store.pull_scope import held_ehr_ids, held_types, known_patients

# What the EHR side changes that the clinic needs (issue: medication lists, allergies,
# problems, demographics), before the types we push.
EHR_OWNED_TYPES = (
    "Patient",
    "MedicationStatement",
    "MedicationRequest",
    "AllergyIntolerance",
    "Condition",
)

# The search parameter naming the patient, per type (FHIR R4 search parameters).
PATIENT_PARAM: dict[str, str] = {
    "AdverseEvent": "subject",
    "AllergyIntolerance": "patient",
    "CarePlan": "patient",
    "Condition": "patient",
    "Consent": "patient",
    "DetectedIssue": "patient",
    "Encounter": "patient",
    "Flag": "patient",
    "MedicationAdministration": "patient",
    "MedicationRequest": "patient",
    "MedicationStatement": "patient",
    "Observation": "patient",
    "Procedure": "patient",
    "QuestionnaireResponse": "patient",
}

# A type not in PATIENT_PARAM (the shared ones below; Provenance, whose `patient` only finds
# those naming the patient among their targets) is pulled by the EHR ids of the copies we hold.
SHARED_TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Device",
    "Medication",
    "Questionnaire",
)


def pulled_types(conn: Connection, tenant: str) -> list[str]:
    """The EHR-owned types first, then every other type the tenant's store holds."""
    others = sorted(t for t in held_types(conn, tenant) if t not in EHR_OWNED_TYPES)
    return [*EHR_OWNED_TYPES, *others]


@dataclass(frozen=True)
class Channel:
    """One way of asking the EHR for changes, with its subjects (pk, search value)."""

    name: str
    resource_type: str
    param: str
    subjects: tuple[tuple[int, str], ...]


def channels(engine: Engine, tenant: str, *, patients_only: bool = False) -> list[Channel]:
    """The tenant's channels, the two Patient ones first."""
    with engine.connect() as conn:
        return channels_in(conn, tenant, patients_only)


def channels_in(conn: Connection, tenant: str, patients_only: bool) -> list[Channel]:
    patients = known_patients(conn, tenant)
    by_id = tuple((p.pk, p.ehr_id) for p in patients if p.ehr_id is not None)
    unknown = tuple(
        (p.pk, f"{p.identifier_system}|{p.identifier_value}") for p in patients if p.ehr_id is None
    )
    out = [
        Channel("Patient", "Patient", "_id", by_id),
        Channel("Patient#identifier", "Patient", "identifier", unknown),
    ]
    if patients_only:
        return out
    for resource_type in pulled_types(conn, tenant):
        if resource_type == "Patient":
            continue
        param = PATIENT_PARAM.get(resource_type)
        if param is not None:
            out.append(Channel(resource_type, resource_type, param, by_id))
        else:
            out.append(
                Channel(
                    resource_type, resource_type, "_id", held_ehr_ids(conn, tenant, resource_type)
                )
            )
    return out
