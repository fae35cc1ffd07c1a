"""The audit trail's table: rows written in batches, and read back per tenant, newest first.

An entry's `public_id` is random (the AuditEvent's id), so one tenant's ids count nothing
of the others'. A search's order is newest first, ties by public id, descending: the
paging cursor (`after`) is the last entry's time and public id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, insert, or_, select
from sqlalchemy.engine import RowMapping

from adapter.store.schema import audit

PUSH_CONFLICT = "push-conflict"


@dataclass(frozen=True)
class AuditEntry:
    """One audited call (or push worker event): `action` is the restful interaction (or
    `push-...`), `object` what it touched, `outcome` the HTTP status (or the push's)."""

    public_id: str
    at: datetime
    tenant: str
    actor: str
    action: str
    object: str
    count: int
    outcome: str


@dataclass(frozen=True)
class Moment:
    """A `date` criterion: `prefix` (eq, ge, gt, le, lt) on the span `start`..`end`
    (equal for an instant; a day's next midnight for a date)."""

    prefix: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class AuditSearch:
    """What to find in one tenant's trail (`None`: every tenant's, for the console's
    operator of every tenant): every date criterion, the actor, the outcome class (as
    AuditEvent.outcome: `0` success, `4` refused, `8` failed), entries older than `after`
    (time, public id), and at most `limit` of them."""

    tenant: str | None
    limit: int
    dates: Sequence[Moment] = ()
    actor: str | None = None
    outcome: str | None = None
    after: tuple[datetime, str] | None = None


def insert_entries(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    conn.execute(insert(audit), [_row(entry) for entry in entries])


def search(conn: Connection, asked: AuditSearch) -> list[AuditEntry]:
    conditions = [] if asked.tenant is None else [audit.c.tenant == asked.tenant]
    conditions += [_date_condition(moment) for moment in asked.dates]
    if asked.actor is not None:
        conditions.append(audit.c.actor == asked.actor)
    if asked.outcome is not None:
        conditions.append(_outcome_condition(asked.outcome))
    if asked.after is not None:
        moment, public_id = asked.after
        same_time = and_(audit.c.at == moment, audit.c.public_id < public_id)
        conditions.append(or_(audit.c.at < moment, same_time))
    newest_first = (audit.c.at.desc(), audit.c.public_id.desc())
    query = select(audit).where(and_(*conditions)).order_by(*newest_first).limit(asked.limit)
    return [_entry(row) for row in conn.execute(query).mappings()]


def read(conn: Connection, tenant: str, public_id: str) -> AuditEntry | None:
    query = select(audit).where(audit.c.tenant == tenant, audit.c.public_id == public_id)
    row = conn.execute(query).mappings().first()
    return None if row is None else _entry(row)


def _outcome_condition(value: str) -> ColumnElement[bool]:
    status = and_(audit.c.outcome >= "100", audit.c.outcome <= "599")
    push = audit.c.action.startswith("push-")
    match value:
        case "0":
            return and_(status, audit.c.outcome < "400", ~push)
        case "4":
            api = and_(status, audit.c.outcome >= "400", audit.c.outcome < "500", ~push)
            return or_(api, audit.c.action == PUSH_CONFLICT)
        case "8":
            api = and_(status, audit.c.outcome >= "500", ~push)
            return or_(api, and_(push, audit.c.action != PUSH_CONFLICT))
    raise ValueError(f"not an outcome class: {value!r}")


def _date_condition(moment: Moment) -> ColumnElement[bool]:
    start, end = moment.start, moment.end
    match moment.prefix:
        case "ge":
            return audit.c.at >= start
        case "gt":
            return audit.c.at >= end if end != start else audit.c.at > start
        case "le":
            return audit.c.at < end if end != start else audit.c.at <= start
        case "lt":
            return audit.c.at < start
    return and_(audit.c.at >= start, audit.c.at < end) if end != start else audit.c.at == start


def _row(entry: AuditEntry) -> dict[str, object]:
    return {
        "public_id": entry.public_id,
        "at": entry.at,
        "tenant": entry.tenant,
        "actor": entry.actor,
        "action": entry.action,
        "object": entry.object,
        "count": entry.count,
        "outcome": entry.outcome,
    }


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        public_id=str(row["public_id"]),
        at=row["at"],
        tenant=str(row["tenant"]),
        actor=str(row["actor"]),
        action=str(row["action"]),
        object=str(row["object"]),
        count=int(row["count"]),
        outcome=str(row["outcome"]),
    )
