"""What the adapter pulls back from the EHR, and how each type is scoped to our patients.

The pull (and `adapter reconcile`) asks the EHR only about patients the store knows: a
type with a patient search parameter is searched by the EHR's ids of our patients; the
types no patient owns (the clinic, its staff) by the EHR ids of the resources we hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from adapter.store.schema import resources

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
    "Condition": "patient",
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
SHARED_TYPES = ("Organization", "Practitioner", "PractitionerRole", "Device")


def pulled_types(conn: Connection, tenant: str) -> list[str]:
    """The EHR-owned types first, then every other type the tenant's store holds."""
    held = conn.execute(
        select(resources.c.resource_type).where(resources.c.tenant == tenant).distinct()
    ).scalars()
    others = sorted(t for t in held if t not in EHR_OWNED_TYPES)
    return [*EHR_OWNED_TYPES, *others]


@dataclass(frozen=True)
class KnownPatient:
    """One of the tenant's patients: our key (the MRN), our logical id, and the EHR's id."""

    pk: int
    patient_key: str
    logical_id: str
    identifier_system: str
    identifier_value: str
    ehr_id: str | None


def known_patients(conn: Connection, tenant: str) -> list[KnownPatient]:
    """Every Patient the tenant's store holds (tombstoned ones too), oldest first."""
    rows = conn.execute(
        select(
            resources.c.pk,
            resources.c.patient_key,
            resources.c.logical_id,
            resources.c.identifier_system,
            resources.c.identifier_value,
            resources.c.ehr_id,
        )
        .where(resources.c.tenant == tenant, resources.c.resource_type == "Patient")
        .order_by(resources.c.pk)
    ).all()
    return [
        KnownPatient(
            int(r.pk),
            str(r.patient_key),
            str(r.logical_id),
            str(r.identifier_system),
            str(r.identifier_value),
            None if r.ehr_id is None else str(r.ehr_id),
        )
        for r in rows
    ]


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
                Channel(resource_type, resource_type, "_id", _held_ids(conn, tenant, resource_type))
            )
    return out


def _held_ids(conn: Connection, tenant: str, resource_type: str) -> tuple[tuple[int, str], ...]:
    rows = conn.execute(
        select(resources.c.pk, resources.c.ehr_id)
        .where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.ehr_id.is_not(None),
        )
        .order_by(resources.c.pk)
    )
    return tuple((int(pk), str(ehr_id)) for pk, ehr_id in rows)
