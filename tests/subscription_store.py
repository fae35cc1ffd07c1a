"""For tests of what raises subscription events: a subscription made straight in the store,
and what its queue holds."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from adapter.store import subscription_queue as queue
from adapter.store import subscriptions
from adapter.store.engine import write_transaction
from adapter.store.subscription_topics import Filter


def subscribe(
    engine: Engine, tenant: str, topic: str, filters: tuple[Filter, ...] = ()
) -> subscriptions.Stored:
    spec = subscriptions.Spec(
        topic=topic,
        status=subscriptions.REQUESTED,
        filters=filters,
        # TEST-NET-1: refused by the guard at once, without DNS or a connection, should a
        # worker on the shared test PostgreSQL claim it later (then `error` after 10 tries).
        endpoint="https://192.0.2.1/hook",
        content="id-only",
        headers=(),
        heartbeat_seconds=None,
        timeout_seconds=10,
        max_count=20,
        resource="{}",
    )
    with write_transaction(engine) as conn:
        return subscriptions.create(conn, tenant, spec, "http://adapter/fhir", datetime.now(UTC))


def queued_events(engine: Engine, sub: subscriptions.Stored) -> list[queue.Note]:
    with engine.connect() as conn:
        return queue.events(conn, sub.pk, 1, None, 1000)
