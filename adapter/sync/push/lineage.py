"""Lineage: every delivery leaves a Provenance from the clinic submission to the EHR's ids.

Kept in the store (`adapter.store.lineage`), not sent: it records what the EHR answered (its
ids, versions and ETags), so any resource in the EHR can be traced back to the clinic
document it came from (`adapter lineage Type/id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapter.ehr.bundles import EntryResult
from adapter.store import lineage as store
from adapter.store.engine import Connection
from adapter.sync.push.payload import Stored
from mappings import terminology
from mappings.common.builders import concept, fhir_datetime
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue

SUBMISSION_SYSTEM = "urn:ketamine-fhir-adapter:submission"


def ehr_reference(item: Stored, answer: EntryResult) -> str | None:
    ehr_id = answer.resource_id or item.ehr_id
    return None if ehr_id is None else f"{item.identity.resource_type}/{ehr_id}"


def provenance(
    delivered: Sequence[tuple[Stored, EntryResult]],
    submission_id: int,
    owner: str,
    now: datetime,
) -> JsonObject | None:
    """The Provenance of one delivery (None when nothing delivered has an EHR id)."""
    targets: list[JsonValue] = []
    for item, answer in delivered:
        reference = ehr_reference(item, answer)
        if reference is not None:
            version = answer.version_id
            targets.append(
                {"reference": f"{reference}/_history/{version}" if version else reference}
            )
    if not targets:
        return None
    sources: list[JsonValue] = [
        {"role": "source", "what": {"reference": item.key}} for item, _ in delivered
    ]
    sources.append(
        {
            "role": "source",
            "what": {"identifier": {"system": SUBMISSION_SYSTEM, "value": str(submission_id)}},
        }
    )
    transmitter = terminology.codes("records", "provenance-transmitter")
    return {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": fhir_datetime(now),
        "agent": [{"type": concept(transmitter, MappingContext()), "who": {"display": owner}}],
        "entity": sources,
    }


def record_delivery(
    conn: Connection,
    tenant: str,
    outbox_id: int,
    delivered: Sequence[tuple[Stored, EntryResult]],
    owner: str,
    now: datetime,
) -> None:
    submission_id = store.submission_of(conn, outbox_id)
    record = provenance(delivered, submission_id, owner, now)
    if record is None:
        return
    rows = [
        store.Delivered(item.key, ehr_reference(item, answer), answer.version_id, answer.etag)
        for item, answer in delivered
    ]
    store.record_delivery(conn, tenant, outbox_id, submission_id, record, now, rows)
