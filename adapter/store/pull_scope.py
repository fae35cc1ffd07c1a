"""What the pull (and `adapter reconcile`) may ask the EHR about: the tenants, the types and
the patients the store holds, and the EHR ids of the resources it holds of a type.

`adapter.sync.pull.scope` turns these into the pull's channels.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from adapter.store.schema import resources


def tenants(conn: Connection) -> list[str]:
    """Every tenant the store holds resources of."""
    return list(conn.execute(select(resources.c.tenant).distinct()).scalars())


def holds_any(conn: Connection, tenant: str | None) -> bool:
    """Whether the store holds any resource of `tenant` (None: of any tenant)."""
    query = select(resources.c.pk).limit(1)
    if tenant is not None:
        query = query.where(resources.c.tenant == tenant)
    return conn.execute(query).first() is not None


def held_types(conn: Connection, tenant: str) -> list[str]:
    """Every resource type the tenant's store holds (in no particular order)."""
    found = conn.execute(
        select(resources.c.resource_type).where(resources.c.tenant == tenant).distinct()
    ).scalars()
    return [str(t) for t in found]


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


def held_ehr_ids(conn: Connection, tenant: str, resource_type: str) -> tuple[tuple[int, str], ...]:
    """(pk, EHR id) of the tenant's resources of `resource_type` the EHR holds, oldest first."""
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
