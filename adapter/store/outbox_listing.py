"""What an operator reads of the outbox (`adapter outbox`, `adapter push --dry-run`): entries
in some states, one entry's every column, the states of some ids, and what waits to be sent.

The life cycle that changes entries is `adapter.store.outbox`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from adapter.store.schema import IN_FLIGHT, PENDING, outbox


@dataclass(frozen=True)
class Listed:
    """One line of `adapter outbox list`: the entry's keys as stored (the caller shows its
    patient and encounter by our logical ids), and how far it got."""

    id: int
    state: str
    tenant: str
    patient_key: str
    encounter_key: str
    resource_count: int
    attempts: int
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True)
class Unsent:
    """An entry still to be pushed (pending, or in flight): what `push --dry-run` builds."""

    id: int
    tenant: str
    resource_keys: tuple[str, ...]


def in_states(conn: Connection, states: Collection[str]) -> list[Listed]:
    """The entries in `states`, oldest first."""
    rows = conn.execute(
        select(outbox).where(outbox.c.state.in_(states)).order_by(outbox.c.id)
    ).all()
    return [
        Listed(
            id=row.id,
            state=row.state,
            tenant=row.tenant,
            patient_key=row.patient_key,
            encounter_key=row.encounter_key,
            resource_count=len(row.resource_keys),
            attempts=row.attempts,
            last_status=row.last_status,
            last_error=row.last_error,
        )
        for row in rows
    ]


def columns(conn: Connection, entry_id: int) -> dict[str, object] | None:
    """Every column of one entry by name, in the table's order (None: no such entry)."""
    found = conn.execute(select(outbox).where(outbox.c.id == entry_id)).first()
    return None if found is None else dict(found._mapping)


def states_of(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """The state of each of `ids` that is an entry."""
    found = conn.execute(select(outbox.c.id, outbox.c.state).where(outbox.c.id.in_(ids)))
    return {int(entry_id): str(state) for entry_id, state in found.all()}


def unsent(conn: Connection) -> list[Unsent]:
    """The entries pending or in flight, oldest first."""
    rows = conn.execute(
        select(outbox.c.id, outbox.c.tenant, outbox.c.resource_keys)
        .where(outbox.c.state.in_((PENDING, IN_FLIGHT)))
        .order_by(outbox.c.id)
    ).all()
    return [Unsent(int(i), str(tenant), tuple(keys)) for i, tenant, keys in rows]
