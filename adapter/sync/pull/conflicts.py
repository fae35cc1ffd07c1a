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

from adapter.errors import NotFound
from adapter.store import conflicts as store
from adapter.store.ehr_versions import EhrCopy, set_ehr_copy
from adapter.store.engine import Connection
from adapter.store.outbox import replay
from adapter.store.outbox_holds import parked_holding
from adapter.sync.field_changes import Change, diff
from adapter.sync.pull.ehr_view import EhrRef
from adapter.sync.pull.merge import EhrVersion, Merger, load_local
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
    out = []
    for row in store.stored_conflicts(conn, tenant, include_resolved=include_resolved):
        theirs = _parsed(row.ehr_content)
        out.append(
            Conflict(
                id=row.id,
                tenant=row.tenant,
                key=row.key,
                ehr_version=row.ehr_version,
                local_version=row.local_version,
                detected_at=row.detected_at,
                state=row.state,
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
    row = store.open_one(conn, conflict_id)
    if row is None:
        raise NotFound(f"no open conflict {conflict_id}")
    local = load_local(conn, row.resource_pk)
    assert local is not None  # a foreign key: the resource row exists
    merger = Merger(conn, row.tenant, ehr_base, now)
    theirs = _parsed(row.ehr_content)
    version = EhrVersion(EhrRef(local.resource_type, row.ehr_id), row.ehr_version, None)
    if keep == "ehr":
        if theirs is None:
            merger.tombstone(local, version)
        else:
            merger.write_version(local, version, theirs)
        merger.raise_events()
    else:
        # Our version goes over theirs: the EHR's version is what If-Match must name now.
        gone = theirs is None
        copy = EhrCopy(
            local.resource_type,
            local.logical_id,
            None if gone else row.ehr_id,
            None if gone else row.ehr_version,
            None if gone else row.ehr_etag,
        )
        set_ehr_copy(conn, local.pk, copy)
        store.queue_resend(conn, row.tenant, local.key, local.patient_key, local.pk, now)
    ids = parked_holding(conn, row.tenant, local.key)
    if ids:
        replay(conn, ids, now)
    store.close(conn, row, keep, actor, now)


def _parsed(text: str) -> Resource | None:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else None
