"""What the operator's console reads beyond `adapter.store.operations`: the tenants an
operator of every tenant chooses among, and the look-ups behind its pages and actions that
work for one tenant or, with `tenant=None`, for every tenant.

Ids, states and instants only: never a resource's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, select, union

from adapter.store.schema import (
    CONFLICT,
    DEAD,
    DONE,
    OPEN,
    outbox,
    pull_conflicts,
    submissions,
    subscriptions,
    tenants,
)


@dataclass(frozen=True)
class LastPush:
    """The outbox entry the push last tried, and how that went (ids and statuses only)."""

    entry_id: int
    tenant: str
    state: str
    last_status: int | None
    error_class: str
    """The class of the last error (`EhrRefused`), empty when there was none."""
    at: datetime

    @property
    def result(self) -> str:
        status = f"HTTP {self.last_status}" if self.last_status is not None else ""
        why = ", ".join(part for part in (status, self.error_class) if part)
        if self.state == DONE:
            return "delivered"
        if self.state in (DEAD, CONFLICT):
            return f"{'refused' if self.state == DEAD else 'conflict'} ({why or 'no answer'})"
        return f"retrying ({why})" if why else "being sent"


def last_push(conn: Connection, tenant: str | None) -> LastPush | None:
    """The entry the push last tried (of `tenant` when given), None when it never tried."""
    query = select(outbox).where(outbox.c.attempts > 0)
    if tenant is not None:
        query = query.where(outbox.c.tenant == tenant)
    row = conn.execute(query.order_by(outbox.c.updated_at.desc(), outbox.c.id.desc())).first()
    if row is None:
        return None
    at: datetime = row.updated_at
    return LastPush(
        entry_id=int(row.id),
        tenant=str(row.tenant),
        state=str(row.state),
        last_status=None if row.last_status is None else int(row.last_status),
        error_class=str(row.last_error or "").partition(":")[0],
        at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
    )


def known_tenants(conn: Connection) -> list[str]:
    """Every tenant the store holds anything of (a document, an outbox entry or a FHIR
    Subscription), sorted."""
    names = union(
        select(tenants.c.tenant),
        select(submissions.c.tenant).distinct(),
        select(subscriptions.c.tenant).distinct(),
    )
    return sorted(str(name) for name in conn.execute(names).scalars())


def parked_by_tenant(
    conn: Connection, tenant: str | None, ids: Sequence[int]
) -> dict[str, list[int]]:
    """Those of `ids` that are dead letters or conflicts (of `tenant` when given), by tenant."""
    query = select(outbox.c.tenant, outbox.c.id).where(
        outbox.c.id.in_(ids), outbox.c.state.in_((DEAD, CONFLICT))
    )
    if tenant is not None:
        query = query.where(outbox.c.tenant == tenant)
    found: dict[str, list[int]] = {}
    for owner, entry_id in conn.execute(query.order_by(outbox.c.id)):
        found.setdefault(str(owner), []).append(int(entry_id))
    return found


def open_conflict_tenant(conn: Connection, conflict_id: int, tenant: str | None) -> str | None:
    """The tenant of the open conflict `conflict_id` (when it is `tenant`'s); None otherwise."""
    query = select(pull_conflicts.c.tenant).where(
        pull_conflicts.c.id == conflict_id, pull_conflicts.c.state == OPEN
    )
    if tenant is not None:
        query = query.where(pull_conflicts.c.tenant == tenant)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def find_submissions(
    conn: Connection,
    tenant: str | None,
    *,
    public_id: str = "",
    encounter_id: str = "",
    received_on: date | None = None,
    limit: int = 50,
) -> list[tuple[str, str]]:
    """`(tenant, public id)` of the submissions matching every filter given, newest first."""
    query = select(submissions.c.tenant, submissions.c.public_id)
    if tenant is not None:
        query = query.where(submissions.c.tenant == tenant)
    if public_id:
        query = query.where(submissions.c.public_id == public_id)
    if encounter_id:
        query = query.where(submissions.c.encounter_key == encounter_id)
    if received_on is not None:
        start = datetime.combine(received_on, time.min, UTC)
        query = query.where(
            submissions.c.received_at >= start,
            submissions.c.received_at < start + timedelta(days=1),
        )
    query = query.order_by(submissions.c.received_at.desc()).limit(limit)
    return [(str(owner), str(found)) for owner, found in conn.execute(query)]
