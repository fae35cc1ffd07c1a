"""Deliveries: what the EHR answered for each outbox entry it took, kept as a Provenance
(`deliveries`) with one `delivered_resources` row per resource for look-ups.

`adapter.sync.push.lineage` builds the Provenance; `adapter lineage` reads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Connection, insert, select

from adapter.store.schema import delivered_resources, deliveries, outbox
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
