"""Sent notifications past the retention are deleted in batches, oldest events first and
only as a run from the first, never an unsent one; the count `$status` gives stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from adapter.store import subscription_upkeep
from adapter.store.engine import write_transaction
from adapter.store.schema import subscription_notifications as notes
from adapter.store.subscription_events import raise_events
from adapter.store.subscription_topics import ENCOUNTER, Change
from adapter.store.subscription_upkeep import first_held_event, prune_sent
from adapter.store.subscriptions import Stored, read_by_pk
from adapter.store.upkeep import Retention, upkeep_once
from tests.subscription_store import queued_events, subscribe

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _events(engine: Engine, tenant: str, count: int) -> None:
    changes = [Change("clinic", "Encounter", f"e{n}", 1, "create", None) for n in range(count)]
    with write_transaction(engine) as conn:
        raise_events(conn, tenant, changes, T0)


def _sent(engine: Engine, sub: Stored, numbers: range, at: datetime) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(notes)
            .where(notes.c.subscription_id == sub.pk, notes.c.event_number.in_(list(numbers)))
            .values(sent_at=at)
        )


def _handshake_sent(engine: Engine, sub: Stored, at: datetime) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(notes)
            .where(notes.c.subscription_id == sub.pk, notes.c.event_number.is_(None))
            .values(sent_at=at)
        )


def _numbers(engine: Engine, sub: Stored) -> list[int | None]:
    return [e.event_number for e in queued_events(engine, sub)]


def _first(engine: Engine, sub: Stored) -> int:
    with engine.connect() as conn:
        found = read_by_pk(conn, sub.pk)
        assert found is not None
        return first_held_event(conn, sub.pk, found.events_count)


def test_prune__sent_past_retention_go_in_batches__recent_and_unsent_stay(
    engine: Engine, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscription_upkeep, "DELETE_BATCH", 2)
    sub = subscribe(engine, tenant, ENCOUNTER)
    _events(engine, tenant, 8)
    _handshake_sent(engine, sub, T0)
    _sent(engine, sub, range(1, 6), T0)  # 1..5 sent 40 days before `now`
    _sent(engine, sub, range(6, 7), T0 + 35 * DAY)  # 6 sent 5 days before
    # 7 and 8 never sent: older than the retention, yet they stay.
    deleted = prune_sent(engine, T0 + 40 * DAY, 30)
    assert deleted == 6  # the handshake and events 1..5
    assert _numbers(engine, sub) == [6, 7, 8]
    assert _first(engine, sub) == 6
    with engine.connect() as conn:
        kinds = conn.execute(select(notes.c.kind).where(notes.c.subscription_id == sub.pk))
        assert "handshake" not in set(kinds.scalars())
        found = read_by_pk(conn, sub.pk)
    assert found is not None
    assert found.events_count == 8  # what $status says is untouched


def test_prune__an_older_event_held_back__nothing_after_it_goes(
    engine: Engine, tenant: str
) -> None:
    sub = subscribe(engine, tenant, ENCOUNTER)
    _events(engine, tenant, 4)
    _sent(engine, sub, range(1, 2), T0)
    _sent(engine, sub, range(2, 3), T0 + 35 * DAY)
    _sent(engine, sub, range(3, 5), T0)
    prune_sent(engine, T0 + 40 * DAY, 30)
    # Held stays a run without a hole: 3 and 4 wait for 2 to age out.
    assert _numbers(engine, sub) == [2, 3, 4]
    assert _first(engine, sub) == 2
    prune_sent(engine, T0 + 70 * DAY, 30)
    assert _numbers(engine, sub) == []
    assert _first(engine, sub) == 5


def test_prune__retention_0__keeps_everything(engine: Engine, tenant: str) -> None:
    sub = subscribe(engine, tenant, ENCOUNTER)
    _events(engine, tenant, 3)
    _sent(engine, sub, range(1, 4), T0)
    assert prune_sent(engine, T0 + 3650 * DAY, 0) == 0
    assert _numbers(engine, sub) == [1, 2, 3]


def test_upkeep_once__prunes_the_notifications_with_the_audit_trail(
    engine: Engine, tenant: str
) -> None:
    sub = subscribe(engine, tenant, ENCOUNTER)
    other = subscribe(engine, f"{tenant}-b", ENCOUNTER)
    _events(engine, tenant, 2)
    _events(engine, f"{tenant}-b", 2)
    _sent(engine, sub, range(1, 3), T0)
    upkeep_once(engine, T0 + 31 * DAY, Retention(audit_days=0, subscription_days=30))
    assert _numbers(engine, sub) == []
    assert _numbers(engine, other) == [1, 2]  # unsent: kept whatever the tenant
