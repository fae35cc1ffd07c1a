"""Subscription events on PostgreSQL under concurrency: clinics accepting at once still
number each subscription's events without a gap or a repeat, and two deliverers claiming at
once never both take one subscription (`FOR UPDATE SKIP LOCKED`)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from adapter.ingest import ingest_encounter
from adapter.store import subscription_queue as queue
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.subscription_topics import ENCOUNTER
from tests.integration.support import encounter, run_context
from tests.subscription_store import queued_events, subscribe

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = create_store_engine(postgres_url)
    upgrade(made)
    yield made
    made.dispose()


def test_concurrent_accepts__event_numbers_gapless_per_subscription(engine: Engine) -> None:
    tenant = f"pg-subs-{uuid.uuid4().hex[:8]}"
    ctx = replace(run_context(), tenant=tenant)  # PostgreSQL is shared: ids of our own
    subs = [subscribe(engine, tenant, ENCOUNTER) for _ in range(3)]
    documents = [encounter(n).model_dump_json(exclude_none=True).encode() for n in range(24)]
    # The tenant's first document alone: it fixes the tenant's namespace (a row of its own).
    ingest_encounter(engine, documents[0], ctx)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda doc: ingest_encounter(engine, doc, ctx), documents[1:]))
    for sub in subs:
        numbers = [event.event_number for event in queued_events(engine, sub)]
        assert numbers == list(range(1, 25))


def test_two_deliverers_claiming_at_once__never_share_a_subscription(engine: Engine) -> None:
    tenant = f"pg-subs-{uuid.uuid4().hex[:8]}"
    mine = {subscribe(engine, tenant, ENCOUNTER).pk for _ in range(6)}
    now = datetime.now(UTC)
    barrier = threading.Barrier(2)

    def claim(owner: str) -> set[int]:
        barrier.wait()
        with write_transaction(engine) as conn:
            found = queue.claim(conn, owner, now, timedelta(minutes=1), limit=100)
        return {c.subscription.pk for c in found} & mine

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(claim, ["deliverer-1", "deliverer-2"])
    assert first.isdisjoint(second)
    assert first | second == mine
