"""Deliveries: what the EHR answered for each outbox entry it took, kept as a Provenance
(`deliveries`) with one `delivered_resources` row per resource for look-ups.

`adapter.sync.push.lineage` builds the Provenance; `adapter lineage` reads it back (`traces`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Connection, insert, or_, select

from adapter.store.schema import delivered_resources, deliveries, outbox, submissions
from mappings.jsontypes import JsonObject


@dataclass(frozen=True)
class Delivered:
    """One resource of a delivery: our key and what the EHR calls it now."""

    resource_key: str
    ehr_reference: str | None
    ehr_version: str | None
    ehr_etag: str | None


def submission_of(conn: Connection, outbox_id: int) -> int:
    """The submission an outbox entry carries (its newest, when a resend merged into it)."""
    found = conn.execute(select(outbox.c.submission_id).where(outbox.c.id == outbox_id))
    return int(found.scalar_one())


def record_delivery(
    conn: Connection,
    tenant: str,
    outbox_id: int,
    submission_id: int,
    provenance: JsonObject,
    at: datetime,
    delivered: Sequence[Delivered],
) -> None:
    delivery_id = conn.execute(
        insert(deliveries)
        .values(
            tenant=tenant,
            outbox_id=outbox_id,
            submission_id=submission_id,
            at=at,
            provenance=orjson.dumps(provenance).decode(),
        )
        .returning(deliveries.c.id)
    ).scalar_one()
    conn.execute(
        insert(delivered_resources),
        [
            {
                "delivery_id": delivery_id,
                "resource_key": item.resource_key,
                "ehr_reference": item.ehr_reference,
                "ehr_version": item.ehr_version,
                "ehr_etag": item.ehr_etag,
            }
            for item in delivered
        ],
    )


@dataclass(frozen=True)
class Trace:
    """One delivery that wrote a resource, with the clinic submission it came from; the
    submission's encounter as the store keys it (the caller names it by our logical id)."""

    at: datetime
    outbox_id: int
    provenance: str
    resource_key: str
    ehr_reference: str | None
    ehr_version: str | None
    ehr_etag: str | None
    submission_id: int
    kind: str
    tenant: str
    encounter_key: str
    received_at: datetime
    content_hash: str


def traces(conn: Connection, reference: str) -> list[Trace]:
    """Every delivery of the resource `reference` names, by its EHR reference or our key,
    oldest first."""
    rows = conn.execute(
        select(
            deliveries.c.at,
            deliveries.c.outbox_id,
            deliveries.c.provenance,
            delivered_resources.c.resource_key,
            delivered_resources.c.ehr_reference,
            delivered_resources.c.ehr_version,
            delivered_resources.c.ehr_etag,
            submissions.c.id.label("submission_id"),
            submissions.c.kind,
            submissions.c.tenant,
            submissions.c.encounter_key,
            submissions.c.received_at,
            submissions.c.content_hash,
        )
        .join(deliveries, deliveries.c.id == delivered_resources.c.delivery_id)
        .join(submissions, submissions.c.id == deliveries.c.submission_id)
        .where(
            or_(
                delivered_resources.c.ehr_reference == reference,
                delivered_resources.c.resource_key == reference,
            )
        )
        .order_by(deliveries.c.at)
    ).all()
    return [Trace(**row._asdict()) for row in rows]
