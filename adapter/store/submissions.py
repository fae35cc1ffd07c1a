"""Reads of clinic submissions, for their status: the submission, its outbox entry's
state, and what the EHR calls each resource delivered for it.

Every read is within the caller's tenant. A submission is found by its public id, never
by the store's number (which counts every tenant's submissions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from adapter.store.schema import delivered_resources, deliveries, outbox, submissions


@dataclass(frozen=True)
class Submission:
    """One received submission: its encounter, when (UTC), and its outbox entry, if any
    (none when it changed nothing)."""

    encounter_key: str
    received_at: datetime
    outbox_id: int | None


@dataclass(frozen=True)
class EntryState:
    """The state of a submission's outbox entry (`adapter.store.outbox`'s states), its
    attempts, the EHR's last HTTP status and the outcome kept (JSON text), if any."""

    state: str
    attempts: int
    last_status: int | None
    outcome: str | None


@dataclass(frozen=True)
class Delivered:
    """What the EHR calls one delivered resource, by our resource key."""

    resource_key: str
    ehr_reference: str | None
    ehr_version: str | None


def find(conn: Connection, tenant: str, public_id: str) -> Submission | None:
    row = conn.execute(
        select(
            submissions.c.encounter_key, submissions.c.received_at, submissions.c.outbox_id
        ).where(submissions.c.public_id == public_id, submissions.c.tenant == tenant)
    ).first()
    if row is None:
        return None
    return Submission(row.encounter_key, _utc(row.received_at), row.outbox_id)


def entry_state(conn: Connection, tenant: str, outbox_id: int) -> EntryState:
    entry = conn.execute(
        select(outbox.c.state, outbox.c.attempts, outbox.c.last_status, outbox.c.outcome).where(
            outbox.c.id == outbox_id, outbox.c.tenant == tenant
        )
    ).one()
    return EntryState(entry.state, entry.attempts, entry.last_status, entry.outcome)


def delivered(conn: Connection, tenant: str, outbox_id: int) -> list[Delivered]:
    """What the EHR calls each resource delivered for the entry; the newest delivery of
    each wins."""
    rows = conn.execute(
        select(
            delivered_resources.c.resource_key,
            delivered_resources.c.ehr_reference,
            delivered_resources.c.ehr_version,
        )
        .join(deliveries, deliveries.c.id == delivered_resources.c.delivery_id)
        .where(deliveries.c.tenant == tenant, deliveries.c.outbox_id == outbox_id)
        .order_by(deliveries.c.id)
    ).all()
    newest = {r.resource_key: r for r in rows}
    return [Delivered(key, r.ehr_reference, r.ehr_version) for key, r in newest.items()]


def _utc(moment: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its offset.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
