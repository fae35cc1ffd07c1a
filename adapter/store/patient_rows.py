"""One patient's current resources, each with the source of its current version.

What the clinic's patient view (`adapter.sync.patient_view`) is assembled from: the
Patient, found by our identifier, and the resources of some types held under the
patient's key (the MRN), whoever wrote them: the clinic's own, and those the pull imported
from the EHR (which carry the EHR's identifier, not ours). Tombstones are left out. Every
read is within one tenant, so another clinic's patient is simply not there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, or_, select

from adapter.store.schema import resource_versions, resources
from mappings.common.identity import Identity
from mappings.jsontypes import Resource


@dataclass(frozen=True)
class StoredResource:
    """A current resource: its identity columns, content and where its version came from."""

    pk: int
    resource_type: str
    logical_id: str
    identifier_system: str
    identifier_value: str
    text: str
    """The stored JSON; parsed on first use of `content` (older reviews' are never read)."""
    source: str
    """`clinic` (accepted from the clinic API) or `ehr` (taken from the EHR by the pull)."""
    last_updated: datetime
    """When the store last changed it, in UTC."""

    @cached_property
    def content(self) -> Resource:
        loaded = json.loads(self.text)
        return loaded if isinstance(loaded, dict) else {}

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.logical_id}"


def current_patient(conn: Connection, tenant: str, patient: Identity) -> StoredResource | None:
    """The tenant's current, undeleted Patient with `patient`'s identifier, if any."""
    query = _current(tenant).where(
        resources.c.resource_type == patient.resource_type,
        resources.c.identifier_system == patient.system,
        resources.c.identifier_value == patient.value,
    )
    found = [_stored(row) for row in conn.execute(query)]
    return found[0] if found else None


@dataclass(frozen=True)
class Wanted:
    """Which of a patient's resources to read: of `types`, with an identifier under one of
    `systems` (any when None), or, with `foreign_to`, under none starting with it."""

    types: tuple[str, ...]
    systems: tuple[str, ...] | None = None
    foreign_to: str | None = None

    def clause(self) -> ColumnElement[bool]:
        found: list[ColumnElement[bool]] = [resources.c.resource_type.in_(self.types)]
        if self.systems is not None:
            found.append(resources.c.identifier_system.in_(self.systems))
        if self.foreign_to is not None:
            # Exact, by `substr`: SQLite's LIKE ignores case.
            head = func.substr(resources.c.identifier_system, 1, len(self.foreign_to))
            found.append(head != self.foreign_to)
        return and_(*found)


def patient_resources(
    conn: Connection, tenant: str, patient_key: str, wanted: Sequence[Wanted]
) -> list[StoredResource]:
    """The current, undeleted resources held under `patient_key` that any of `wanted`
    describes, oldest first: one pass over the patient's rows, however many kinds."""
    query = _current(tenant).where(
        resources.c.patient_key == patient_key, or_(*(w.clause() for w in wanted))
    )
    return [_stored(row) for row in conn.execute(query.order_by(resources.c.pk))]


def _current(tenant: str) -> Select[Any]:
    return (
        select(
            resources.c.pk,
            resources.c.resource_type,
            resources.c.logical_id,
            resources.c.identifier_system,
            resources.c.identifier_value,
            resources.c.content,
            resources.c.last_updated,
            resource_versions.c.source,
        )
        .join(
            resource_versions,
            (resource_versions.c.resource_pk == resources.c.pk)
            & (resource_versions.c.version == resources.c.version),
        )
        .where(resources.c.tenant == tenant, resources.c.deleted.is_(False))
    )


def _stored(row: Row[Any]) -> StoredResource:
    moment: datetime = row.last_updated
    # SQLite hands back the stored UTC time without its offset.
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return StoredResource(
        pk=int(row.pk),
        resource_type=str(row.resource_type),
        logical_id=str(row.logical_id),
        identifier_system=str(row.identifier_system),
        identifier_value=str(row.identifier_value),
        text=str(row.content),
        source=str(row.source),
        last_updated=utc,
    )
