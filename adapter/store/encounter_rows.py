"""An encounter as the store holds it, for a later document about it (`adapter.ingest`,
`adapter.identity_rules`): which patient it was first sent for, and the tenant's current
resources a record is checked against and refers to (its Patient, the Encounter, the
staff, the infusion). Tombstones are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from adapter.store.schema import resources
from mappings.common.identity import Identity


@dataclass(frozen=True)
class CurrentRow:
    patient_key: str | None
    content: str
    """The current version's JSON."""


def encounter_patient(conn: Connection, tenant: str, encounter: Identity) -> str | None:
    """The patient key (MRN) the tenant's encounter was first sent for, if held."""
    found = conn.execute(
        select(resources.c.patient_key).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == "Encounter",
            resources.c.identifier_system == encounter.system,
            resources.c.identifier_value == encounter.value,
        )
    ).scalar()
    return None if found is None else str(found)


def current_rows(
    conn: Connection,
    tenant: str,
    types: Sequence[str],
    system: str | None = None,
    value: str | None = None,
    patient_key: str | None = None,
) -> list[CurrentRow]:
    """The tenant's live resources of `types`, of one identifier system, value or patient
    when given."""
    query = select(resources.c.patient_key, resources.c.content).where(
        resources.c.tenant == tenant,
        resources.c.resource_type.in_(types),
        resources.c.deleted.is_(False),
    )
    if system is not None:
        query = query.where(resources.c.identifier_system == system)
    if value is not None:
        query = query.where(resources.c.identifier_value == value)
    if patient_key is not None:
        query = query.where(resources.c.patient_key == patient_key)
    return [CurrentRow(row.patient_key, row.content) for row in conn.execute(query)]
