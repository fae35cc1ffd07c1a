"""The pull's progress in `sync_state`: one JSON value per tenant and name (a channel's
state `pull/<channel>`, the pull's lease `pull/lease`), and where a first history read starts.

What the values mean is `adapter.sync.pull.state`'s and `adapter.sync.pull.puller`'s; here they are
stored, read and dropped, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from adapter.store.schema import resource_versions, resources, sync_state
from mappings.jsontypes import JsonObject


def load_state(conn: Connection, tenant: str, name: str) -> JsonObject:
    """The value stored under `name` for `tenant`; `{}` when there is none."""
    value = conn.execute(
        select(sync_state.c.value).where(sync_state.c.tenant == tenant, sync_state.c.name == name)
    ).scalar()
    loaded = orjson.loads(value) if value else {}
    return loaded if isinstance(loaded, dict) else {}


def save_state(conn: Connection, tenant: str, name: str, value: JsonObject, now: datetime) -> None:
    text = orjson.dumps(value).decode()
    changed = conn.execute(
        update(sync_state)
        .where(sync_state.c.tenant == tenant, sync_state.c.name == name)
        .values(value=text, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(
            insert(sync_state).values(tenant=tenant, name=name, value=text, updated_at=now)
        )


def drop_state(conn: Connection, tenant: str, name: str) -> None:
    conn.execute(delete(sync_state).where(sync_state.c.tenant == tenant, sync_state.c.name == name))


def oldest_ehr_version(conn: Connection, tenant: str, resource_type: str) -> datetime | None:
    """When we recorded the oldest version we hold of a `resource_type` the EHR has (UTC)."""
    oldest = conn.execute(
        select(func.min(resource_versions.c.recorded_at))
        .join(resources, resources.c.pk == resource_versions.c.resource_pk)
        .where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.ehr_id.is_not(None),
        )
    ).scalar()
    if not isinstance(oldest, datetime):
        return None
    return oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)  # SQLite keeps no zone
