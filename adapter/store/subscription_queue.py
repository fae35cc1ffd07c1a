"""The subscriptions' delivery queue: claim a subscription's next notifications, settle them.

    requested ──handshake sent──▶ active ──failures reach the limit──▶ error
        ▲                                                                 │
        └───────────── the client PUTs status `requested` ◀──────────────┘

A claim leases the subscription (`lease_owner`, `lease_until`), so one deliverer at a time
sends its notifications, oldest first: a `requested` subscription its handshake alone; an
active one its heartbeat, or a run of consecutive events (up to its `max_count`) in one
Bundle. A deliverer killed mid-send leaves the lease to run out; the next one sends the
same notifications again (at least once: a receiver drops an event number it has seen).
Sent notifications stay for `ADAPTER_SUBSCRIPTION_RETENTION_DAYS`, so `$events` can give
them again; then `adapter.store.subscription_upkeep` prunes them, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    insert,
    or_,
    select,
    update,
)

from adapter.store.schema import audit, resource_versions, resources, subscriptions
from adapter.store.schema import subscription_notifications as notes
from adapter.store.subscriptions import (
    ACTIVE,
    ERROR,
    EVENT,
    HANDSHAKE,
    HEARTBEAT,
    REQUESTED,
    Stored,
    read_by_pk,
    utc,
)


@dataclass(frozen=True)
class Note:
    """One notification: a handshake, a heartbeat or a numbered event with its focus."""

    id: int
    kind: str
    event_number: int | None
    focus_type: str | None
    focus_id: str | None
    focus_version: int | None
    action: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Claimed:
    subscription: Stored
    notes: tuple[Note, ...]


def claim(
    conn: Connection, owner: str, now: datetime, lease: timedelta, limit: int = 8
) -> list[Claimed]:
    """Lease up to `limit` subscriptions with notifications due, each with what to send."""
    query = _due(now).order_by(subscriptions.c.next_attempt_at, subscriptions.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=subscriptions)
    claimed = []
    for found in conn.execute(query).scalars().all():
        pk = int(found)
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == pk)
            .values(lease_owner=owner, lease_until=now + lease)
        )
        sub = read_by_pk(conn, pk)
        if sub is not None:
            claimed.append(Claimed(sub, _next_notes(conn, sub, now)))
    return [c for c in claimed if c.notes]


def has_due(conn: Connection, now: datetime) -> bool:
    """Whether any subscription has notifications to send now (a read: no write lock)."""
    return conn.execute(_due(now).limit(1)).first() is not None


def _due(now: datetime) -> Select[Any]:  # the ids of the subscriptions due
    waiting = exists().where(
        notes.c.subscription_id == subscriptions.c.id, notes.c.sent_at.is_(None)
    )
    return select(subscriptions.c.id).where(
        subscriptions.c.status.in_((REQUESTED, ACTIVE)),
        subscriptions.c.next_attempt_at <= now,
        or_(subscriptions.c.lease_until.is_(None), subscriptions.c.lease_until < now),
        waiting,
    )


def _next_notes(conn: Connection, sub: Stored, now: datetime) -> tuple[Note, ...]:
    unsent = select(notes).where(notes.c.subscription_id == sub.pk, notes.c.sent_at.is_(None))
    if sub.status == REQUESTED:
        query = unsent.where(notes.c.kind == HANDSHAKE).order_by(notes.c.id.desc()).limit(1)
        return tuple(_note(row) for row in conn.execute(query))
    rows = [
        _note(row) for row in conn.execute(unsent.order_by(notes.c.id).limit(sub.spec.max_count))
    ]
    # A handshake left from before an activation is not sent again.
    stale = [n.id for n in rows if n.kind == HANDSHAKE]
    rows = [n for n in rows if n.kind != HANDSHAKE]
    if stale:
        conn.execute(update(notes).where(notes.c.id.in_(stale)).values(sent_at=now))
    if rows and rows[0].kind == HEARTBEAT:
        return (rows[0],)
    run = []
    for note in rows:
        if note.kind != EVENT:
            break
        run.append(note)
    return tuple(run)


def due_heartbeats(conn: Connection, now: datetime) -> list[int]:
    """The active subscriptions silent for their heartbeat period, nothing queued (a read)."""
    unsent = exists().where(
        notes.c.subscription_id == subscriptions.c.id, notes.c.sent_at.is_(None)
    )
    rows = conn.execute(
        select(
            subscriptions.c.id,
            subscriptions.c.heartbeat_seconds,
            subscriptions.c.last_sent_at,
            subscriptions.c.updated_at,
        ).where(
            subscriptions.c.status == ACTIVE,
            subscriptions.c.heartbeat_seconds.is_not(None),
            ~unsent,
        )
    ).all()
    return [
        int(row.id)
        for row in rows
        if utc(row.last_sent_at or row.updated_at) + timedelta(seconds=row.heartbeat_seconds) <= now
    ]


def queue_heartbeats(conn: Connection, pks: Sequence[int], now: datetime) -> None:
    """Queue a heartbeat for each of `pks` (two deliverers may both: a receiver gets two)."""
    if pks:
        conn.execute(
            insert(notes),
            [{"subscription_id": pk, "kind": HEARTBEAT, "occurred_at": now} for pk in pks],
        )


def settle_sent(
    conn: Connection, sub: Stored, owner: str, sent: Sequence[Note], now: datetime
) -> bool:
    """Record `sent` as delivered (a handshake makes the subscription active); False when
    the lease was lost meanwhile."""
    values: dict[str, object] = {
        "failures": 0,
        "last_error": None,
        "last_sent_at": now,
        "lease_owner": None,
        "lease_until": None,
        "next_attempt_at": now,
    }
    if any(n.kind == HANDSHAKE for n in sent):
        values["status"] = ACTIVE
    done = conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == sub.pk, subscriptions.c.lease_owner == owner)
        .values(**values)
    )
    if done.rowcount != 1:
        return False
    done_now: ColumnElement[bool] = notes.c.id.in_([n.id for n in sent])
    if "status" in values:  # every handshake still queued is answered by this one
        done_now = or_(done_now, and_(notes.c.subscription_id == sub.pk, notes.c.kind == HANDSHAKE))
    conn.execute(update(notes).where(done_now, notes.c.sent_at.is_(None)).values(sent_at=now))
    return True


def settle_failed(
    conn: Connection,
    sub: Stored,
    owner: str,
    now: datetime,
    *,
    error: str,
    retry_at: datetime,
    give_up: bool,
) -> bool:
    """Record a failed delivery: retry at `retry_at`, or (`give_up`) status `error` with an
    audit row for the operator. False when the lease was lost meanwhile."""
    values: dict[str, object] = {
        "failures": subscriptions.c.failures + 1,
        "last_error": error[:500],
        "next_attempt_at": retry_at,
        "lease_owner": None,
        "lease_until": None,
    }
    if give_up:
        values |= {"status": ERROR, "updated_at": now}
    done = conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == sub.pk, subscriptions.c.lease_owner == owner)
        .values(**values)
    )
    if done.rowcount == 1 and give_up:
        conn.execute(
            insert(audit).values(
                at=now,
                tenant=sub.tenant,
                actor=owner[:128],
                action="subscription-error",
                object=f"Subscription/{sub.public_id}",
                count=sub.failures + 1,
                outcome=error.split(":", 1)[0][:32],
            )
        )
    return done.rowcount == 1


def errored_since(conn: Connection, since: datetime) -> list[int]:
    """The subscriptions (of every tenant) that went to `error` after `since`, by number."""
    query = select(subscriptions.c.id).where(
        subscriptions.c.status == ERROR, subscriptions.c.updated_at > since
    )
    return [int(pk) for pk in conn.execute(query.order_by(subscriptions.c.id)).scalars()]


def events(conn: Connection, pk: int, since: int, until: int | None, limit: int) -> list[Note]:
    """A subscription's events numbered `since`..`until` (inclusive), oldest first."""
    query = select(notes).where(
        notes.c.subscription_id == pk, notes.c.kind == EVENT, notes.c.event_number >= since
    )
    if until is not None:
        query = query.where(notes.c.event_number <= until)
    return [_note(row) for row in conn.execute(query.order_by(notes.c.event_number).limit(limit))]


def focus_contents(conn: Connection, tenant: str, wanted: Sequence[Note]) -> dict[int, str | None]:
    """The stored content of each event's focus version by note id (None: a deletion)."""
    found: dict[int, str | None] = {}
    for note in wanted:
        if note.focus_type is None or note.focus_version is None:
            continue
        row = conn.execute(
            select(resource_versions.c.content, resource_versions.c.deleted)
            .join(resources, resources.c.pk == resource_versions.c.resource_pk)
            .where(
                resources.c.tenant == tenant,
                resources.c.resource_type == note.focus_type,
                resources.c.logical_id == note.focus_id,
                resource_versions.c.version == note.focus_version,
            )
        ).first()
        if row is not None:
            found[note.id] = None if row.deleted else str(row.content)
    return found


def _note(row: object) -> Note:
    f = row._mapping  # type: ignore[attr-defined]
    return Note(
        id=int(f["id"]),
        kind=str(f["kind"]),
        event_number=f["event_number"],
        focus_type=f["focus_type"],
        focus_id=f["focus_id"],
        focus_version=f["focus_version"],
        action=f["action"],
        occurred_at=utc(f["occurred_at"]),
    )
