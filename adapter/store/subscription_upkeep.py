"""Keeping the subscriptions' queue in hand: sent notifications past the retention deleted.

A notification once sent (a handshake, a heartbeat, an event) is kept so `$events` can
give it again; `prune_sent` deletes those sent more than `ADAPTER_SUBSCRIPTION_RETENTION_DAYS`
ago, one subscription at a time, `DELETE_BATCH` rows per short transaction (writers are
never held long), run by the service's upkeep (`adapter.store.upkeep`). An unsent
notification is never deleted, whatever its age. Events go oldest first and only as a run
from the subscription's first: the events held are always the numbers `first_held_event`
to the subscription's count, without a hole, so `$events` can say exactly which numbers
are gone. `$status` counts from the subscription's own `events_count`, which pruning
leaves alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, or_, select

from adapter.store.engine import write_transaction
from adapter.store.schema import subscription_notifications as notes
from adapter.store.schema import subscriptions
from adapter.store.subscriptions import EVENT

DELETE_BATCH = 5_000


def prune_sent(engine: Engine, now: datetime, retention_days: int) -> int:
    """Delete every subscription's notifications sent before `retention_days` ago (0: none);
    how many went."""
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    with engine.connect() as conn:
        pks = [int(pk) for pk in conn.execute(select(subscriptions.c.id)).scalars()]
    return sum(_prune_one(engine, pk, cutoff) for pk in pks)


def first_held_event(conn: Connection, pk: int, events_count: int) -> int:
    """The lowest event number the subscription still holds (`events_count + 1`: none)."""
    found = conn.execute(
        select(func.min(notes.c.event_number)).where(
            notes.c.subscription_id == pk, notes.c.kind == EVENT
        )
    ).scalar()
    return events_count + 1 if found is None else int(found)


def _prune_one(engine: Engine, pk: int, cutoff: datetime) -> int:
    deleted = 0
    while True:
        with write_transaction(engine) as conn:
            batch = (
                select(notes.c.id)
                .where(notes.c.subscription_id == pk, _prunable(conn, pk, cutoff))
                .limit(DELETE_BATCH)
            )
            count = conn.execute(delete(notes).where(notes.c.id.in_(batch))).rowcount
        deleted += count
        if count < DELETE_BATCH:
            return deleted


def _prunable(conn: Connection, pk: int, cutoff: datetime) -> ColumnElement[bool]:
    """Sent before `cutoff`; an event only below the first one that must stay (unsent, or
    sent since), so what is held stays a run without a hole."""
    kept = conn.execute(
        select(notes.c.event_number)
        .where(
            notes.c.subscription_id == pk,
            notes.c.kind == EVENT,
            or_(notes.c.sent_at.is_(None), notes.c.sent_at >= cutoff),
        )
        .order_by(notes.c.event_number)
        .limit(1)
    ).scalar()
    old = and_(notes.c.sent_at.is_not(None), notes.c.sent_at < cutoff)
    if kept is None:
        return old
    return and_(old, or_(notes.c.kind != EVENT, notes.c.event_number < int(kept)))
