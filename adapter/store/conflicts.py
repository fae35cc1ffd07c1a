"""Conflicts the pull found (`pull_conflicts`): an EHR version kept beside ours until an
operator keeps one side, and what keeping ours puts back in the outbox.

`adapter.sync.pull.conflicts` says what a conflict means and how it ends; `adapter.sync.pull.merge`
opens them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from adapter.errors import NotFound
from adapter.store.ehr_versions import EhrCopy
from adapter.store.outbox_holds import unsent_keys
from adapter.store.schema import (
    OPEN,
    PENDING,
    RESOLVED,
    audit,
    outbox,
    pull_conflicts,
    resource_versions,
    resources,
)


@dataclass(frozen=True)
class StoredConflict:
    """A conflict's row, with our resource's key and current content."""

    id: int
    tenant: str
    resource_pk: int
    key: str
    """Our resource, `Type/logical-id`."""
    content: str
    """Our current version's JSON."""
    ehr_id: str
    ehr_version: str
    ehr_etag: str | None
    ehr_content: str
    """The EHR's version's JSON; `null` when the EHR deleted it."""
    local_version: int
    detected_at: datetime
    state: str
    resolution: str | None


def is_known(conn: Connection, resource_pk: int, ehr_version: str) -> bool:
    """True when a conflict over this EHR version of the resource was opened already."""
    known = conn.execute(
        select(pull_conflicts.c.id).where(
            pull_conflicts.c.resource_pk == resource_pk,
            pull_conflicts.c.ehr_version == ehr_version,
        )
    ).first()
    return known is not None


def open_conflict(
    conn: Connection,
    tenant: str,
    resource_pk: int,
    local_version: int,
    theirs: EhrCopy,
    ehr_content: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(pull_conflicts).values(
            tenant=tenant,
            resource_pk=resource_pk,
            ehr_id=theirs.ehr_id,
            ehr_version=theirs.ehr_version,
            ehr_etag=theirs.ehr_etag,
            ehr_content=ehr_content,
            local_version=local_version,
            detected_at=now,
            state=OPEN,
        )
    )


def stored_conflicts(
    conn: Connection, tenant: str | None = None, *, include_resolved: bool = False
) -> list[StoredConflict]:
    """The open conflicts (or all), of one tenant or every tenant, oldest first."""
    query = _with_resource()
    if tenant is not None:
        query = query.where(pull_conflicts.c.tenant == tenant)
    if not include_resolved:
        query = query.where(pull_conflicts.c.state == OPEN)
    return [_stored(row) for row in conn.execute(query)]


def open_one(conn: Connection, conflict_id: int) -> StoredConflict | None:
    found = conn.execute(
        _with_resource().where(pull_conflicts.c.id == conflict_id, pull_conflicts.c.state == OPEN)
    ).first()
    return None if found is None else _stored(found)


def close(conn: Connection, conflict: StoredConflict, kept: str, actor: str, now: datetime) -> None:
    """Mark the conflict resolved by keeping `kept`'s side, with its audit row."""
    conn.execute(
        update(pull_conflicts)
        .where(pull_conflicts.c.id == conflict.id)
        .values(state=RESOLVED, resolution=kept, resolved_at=now)
    )
    conn.execute(
        insert(audit).values(
            at=now,
            tenant=conflict.tenant,
            actor=actor,
            action="conflict-resolve",
            object=conflict.key,
            count=1,
            outcome=f"kept-{kept}",
        )
    )


def queue_resend(
    conn: Connection, tenant: str, key: str, patient_key: str | None, pk: int, now: datetime
) -> None:
    """Make sure an outbox entry will send `key` (unless one waiting already holds it), as
    part of the clinic submission that last changed it; `NotFound` when none ever did."""
    if key in unsent_keys(conn, tenant):
        return
    submission = conn.execute(
        select(resource_versions.c.submission_id)
        .where(
            resource_versions.c.resource_pk == pk, resource_versions.c.submission_id.is_not(None)
        )
        .order_by(resource_versions.c.version.desc())
        .limit(1)
    ).scalar()
    if submission is None:
        raise NotFound("the resource never came from the clinic: nothing of ours to send")
    conn.execute(
        insert(outbox).values(
            tenant=tenant,
            patient_key=patient_key or "",
            encounter_key=f"conflict:{key}",
            submission_id=submission,
            resource_keys=[key],
            carries_shared=False,
            state=PENDING,
            attempts=0,
            available_at=now,
            created_at=now,
            updated_at=now,
        )
    )


def _with_resource() -> Any:
    return (
        select(
            pull_conflicts, resources.c.resource_type, resources.c.logical_id, resources.c.content
        )
        .join(resources, resources.c.pk == pull_conflicts.c.resource_pk)
        .order_by(pull_conflicts.c.id)
    )


def _stored(row: Row[Any]) -> StoredConflict:
    return StoredConflict(
        id=int(row.id),
        tenant=str(row.tenant),
        resource_pk=int(row.resource_pk),
        key=f"{row.resource_type}/{row.logical_id}",
        content=str(row.content),
        ehr_id=str(row.ehr_id),
        ehr_version=str(row.ehr_version),
        ehr_etag=row.ehr_etag,
        ehr_content=str(row.ehr_content),
        local_version=int(row.local_version),
        detected_at=row.detected_at,
        state=str(row.state),
        resolution=row.resolution,
    )
