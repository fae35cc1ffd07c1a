"""Which of our resources the outbox still holds: the keys (`Type/logical-id`) of entries the
EHR has not taken yet, for the pull (a change still unsent makes an EHR edit a conflict),
conflict resolution and `adapter reconcile`.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, or_, select

from adapter.store.schema import CONFLICT, DEAD, DONE, IN_FLIGHT, PENDING, outbox

# An entry in one of these states holds a clinic change the EHR has not taken yet.
UNSENT_STATES = (PENDING, IN_FLIGHT, CONFLICT, DEAD)


def unsent_keys(conn: Connection, tenant: str, patients: Collection[str] | None = None) -> set[str]:
    """The keys held by the tenant's entries not sent yet (`UNSENT_STATES`); with `patients`,
    only those of entries for these patients or carrying shared resources."""
    query = select(outbox.c.resource_keys).where(
        outbox.c.tenant == tenant, outbox.c.state.in_(UNSENT_STATES)
    )
    if patients is not None:
        query = query.where(
            or_(outbox.c.patient_key.in_(sorted(patients)), outbox.c.carries_shared)
        )
    return {key for (keys,) in conn.execute(query) for key in keys}


def undelivered_keys(conn: Connection, tenant: str) -> frozenset[str]:
    """The keys of every entry of the tenant not done: pending, retrying, dead or conflicting."""
    found = conn.execute(
        select(outbox.c.resource_keys).where(outbox.c.tenant == tenant, outbox.c.state != DONE)
    ).scalars()
    return frozenset(key for keys in found for key in keys)


def parked_holding(conn: Connection, tenant: str, key: str) -> list[int]:
    """The ids of the tenant's dead or conflicting entries that hold `key`."""
    parked = conn.execute(
        select(outbox.c.id, outbox.c.resource_keys).where(
            outbox.c.tenant == tenant, outbox.c.state.in_((CONFLICT, DEAD))
        )
    )
    return [int(entry_id) for entry_id, keys in parked if key in keys]
