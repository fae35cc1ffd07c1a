"""Reads of stored resources by key: the current version, one version, or all of them.

What the FHIR read, vread and instance history answer from. Each read is the caller's
tenant's only: another tenant's resource is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from adapter.store.schema import resource_versions, resources

# The current version of one resource. Built once: building it per read (three column
# comparisons and their cache key) cost more CPU than running it (110 against 22 us).
CURRENT = select(
    resources.c.version, resources.c.content, resources.c.deleted, resources.c.last_updated
).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.logical_id == bindparam("logical_id"),
)


@dataclass(frozen=True)
class Version:
    """One stored version of a resource: its number, content, tombstone flag and time."""

    number: int
    content: str
    deleted: bool
    at: datetime


def versions(
    conn: Connection,
    tenant: str,
    resource_type: str,
    logical_id: str,
    number: int | None,
    every: bool,
) -> list[Version]:
    """The resource's versions, newest first: all (`every`), `number`, or the current one."""
    if number is None and not every:
        named = {"tenant": tenant, "resource_type": resource_type, "logical_id": logical_id}
        row = conn.execute(CURRENT, named).first()
        return [] if row is None else [Version(row[0], row[1], bool(row[2]), row[3])]
    owned = (
        resources.c.tenant == tenant,
        resources.c.resource_type == resource_type,
        resources.c.logical_id == logical_id,
    )
    query = (
        select(
            resource_versions.c.version,
            resource_versions.c.content,
            resource_versions.c.deleted,
            resource_versions.c.recorded_at,
        )
        .join(resources, resources.c.pk == resource_versions.c.resource_pk)
        .where(*owned)
        .order_by(resource_versions.c.version.desc())
    )
    if number is not None:
        query = query.where(resource_versions.c.version == number)
    return [Version(r[0], r[1], bool(r[2]), r[3]) for r in conn.execute(query)]
