"""What `adapter reconcile` (`adapter.sync.reconcile.report`) reads of the store to compare it with
the EHR: the keys of our resources worth comparing, and which EHR ids we hold.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, or_, select

from adapter.store.ehr_provenance import LINEAGE_SYSTEM
from adapter.store.schema import resources


def shared_keys(conn: Connection, tenant: str, types: Collection[str]) -> list[str]:
    """The keys (`Type/logical-id`) of the tenant's resources of `types` worth comparing."""
    rows = conn.execute(_compared(tenant).where(resources.c.resource_type.in_(types))).all()
    return [f"{kind}/{logical_id}" for kind, logical_id in rows]


def patient_keys(
    conn: Connection, tenant: str, patient_key: str, shared_types: Collection[str]
) -> list[str]:
    """The keys of one patient's resources worth comparing, none of `shared_types`."""
    rows = conn.execute(
        _compared(tenant).where(
            resources.c.patient_key == patient_key,
            resources.c.resource_type.not_in(shared_types),
        )
    ).all()
    return [f"{kind}/{logical_id}" for kind, logical_id in rows]


def held_among(
    conn: Connection, tenant: str, resource_type: str, ehr_ids: Collection[str]
) -> set[str]:
    """Those of `ehr_ids` that one of the tenant's resources of `resource_type` is held under."""
    found = conn.execute(
        select(resources.c.ehr_id).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.ehr_id.in_(ehr_ids),
        )
    ).scalars()
    return {str(ehr_id) for ehr_id in found}


def _compared(tenant: str) -> Any:
    """Our resources worth comparing: the current ones, and tombstones the EHR knows of (a
    deletion not sent yet, or one the pull took from the EHR). The pull's own Provenances
    are ours alone, never sent: nothing to compare."""
    return select(resources.c.resource_type, resources.c.logical_id).where(
        resources.c.tenant == tenant,
        or_(resources.c.deleted.is_(False), resources.c.ehr_id.is_not(None)),
        resources.c.identifier_system != LINEAGE_SYSTEM,
    )
