"""Conflicts the pull found (a resource changed on the EHR and in the clinic), and their end.

Nothing is overwritten while a conflict is open: the store keeps the clinic's version as
current, `pull_conflicts` the EHR's, and the push of the clinic's change stops at the EHR's
If-Match check. An operator looks at both (`adapter conflicts`) and keeps one side:

- `ehr`: the EHR's version becomes our current one (source "ehr", with Provenance), or a
  tombstone when the EHR deleted it;
- `clinic`: ours stays, and is sent again over the EHR's version (its version becomes our
  If-Match), through the outbox like any change.

Either way the outbox entries parked on the conflict go back in the queue, so the
encounter's other resources are not held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson
from sqlalchemy import Connection, insert, select, update

from adapter.errors import NotFound
from adapter.store.outbox import replay
from adapter.store.schema import (
    CONFLICT,
    DEAD,
    OPEN,
    PENDING,
    RESOLVED,
    audit,
    outbox,
    pull_conflicts,
    resource_versions,
    resources,
)
from adapter.sync.diff import Change, diff
from adapter.sync.ehr_view import EhrRef
from adapter.sync.merge import UNSENT_STATES, EhrVersion, Merger, load_local
from mappings.jsontypes import Resource

Side = Literal["ehr", "clinic"]


@dataclass(frozen=True)
class Conflict:
    id: int
    tenant: str
    key: str
    """Our resource, `Type/logical-id`."""
    ehr_version: str
    local_version: int
    detected_at: datetime
    state: str
    resolution: str | None
    changes: tuple[Change, ...]
    """From our current version to the EHR's (no values are logged; an operator sees them)."""
    ehr_deleted: bool


def list_conflicts(
    conn: Connection, tenant: str | None = None, *, include_resolved: bool = False
) -> list[Conflict]:
    query = (
        select(
            pull_conflicts, resources.c.resource_type, resources.c.logical_id, resources.c.content
        )
        .join(resources, resources.c.pk == pull_conflicts.c.resource_pk)
        .order_by(pull_conflicts.c.id)
    )
    if tenant is not None:
        query = query.where(pull_conflicts.c.tenant == tenant)
    if not include_resolved:
        query = query.where(pull_conflicts.c.state == OPEN)
    out = []
    for row in conn.execute(query):
        theirs = _parsed(row.ehr_content)
        out.append(
            Conflict(
                id=int(row.id),
                tenant=str(row.tenant),
                key=f"{row.resource_type}/{row.logical_id}",
                ehr_version=str(row.ehr_version),
                local_version=int(row.local_version),
                detected_at=row.detected_at,
                state=str(row.state),
                resolution=row.resolution,
                changes=tuple(diff(_parsed(row.content), theirs)) if theirs else (),
                ehr_deleted=theirs is None,
            )
        )
    return out


def resolve(
    conn: Connection, conflict_id: int, keep: Side, *, ehr_base: str, actor: str, now: datetime
) -> None:
    """End an open conflict by keeping one side (see the module's docstring)."""
    row = conn.execute(
        select(pull_conflicts).where(
            pull_conflicts.c.id == conflict_id, pull_conflicts.c.state == OPEN
        )
    ).first()
    if row is None:
        raise NotFound(f"no open conflict {conflict_id}")
    local = load_local(conn, int(row.resource_pk))
    assert local is not None  # a foreign key: the resource row exists
    merger = Merger(conn, str(row.tenant), ehr_base, now)
    theirs = _parsed(row.ehr_content)
    version = EhrVersion(EhrRef(local.resource_type, str(row.ehr_id)), str(row.ehr_version), None)
    if keep == "ehr":
        if theirs is None:
            merger.tombstone(local, version)
        else:
            merger.write_version(local, version, theirs)
    else:
        # Our version goes over theirs: the EHR's version is what If-Match must name now.
        gone = theirs is None
        conn.execute(
            update(resources)
            .where(resources.c.pk == local.pk)
            .values(
                ehr_id=None if gone else str(row.ehr_id),
                ehr_version=None if gone else str(row.ehr_version),
                ehr_etag=None if gone else row.ehr_etag,
            )
        )
        _queue(conn, str(row.tenant), local.key, local.patient_key, local.pk, now)
    _replay_parked(conn, str(row.tenant), local.key, now)
    conn.execute(
        update(pull_conflicts)
        .where(pull_conflicts.c.id == conflict_id)
        .values(state=RESOLVED, resolution=keep, resolved_at=now)
    )
    conn.execute(
        insert(audit).values(
            at=now,
            tenant=row.tenant,
            actor=actor,
            action="conflict-resolve",
            object=local.key,
            count=1,
            outcome=f"kept-{keep}",
        )
    )


def _queue(
    conn: Connection, tenant: str, key: str, patient_key: str | None, pk: int, now: datetime
) -> None:
    """Make sure an outbox entry will send `key` (unless one waiting already holds it)."""
    waiting = conn.execute(
        select(outbox.c.resource_keys).where(
            outbox.c.tenant == tenant, outbox.c.state.in_(UNSENT_STATES)
        )
    )
    if any(key in keys for (keys,) in waiting):
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


def _replay_parked(conn: Connection, tenant: str, key: str, now: datetime) -> None:
    parked = conn.execute(
        select(outbox.c.id, outbox.c.resource_keys).where(
            outbox.c.tenant == tenant, outbox.c.state.in_((CONFLICT, DEAD))
        )
    )
    ids = [int(entry_id) for entry_id, keys in parked if key in keys]
    if ids:
        replay(conn, ids, now)


def _parsed(text: str) -> Resource | None:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else None
