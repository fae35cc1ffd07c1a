"""The `resources` rows an accept reads and writes, as sets: a few statements a document.

A document of thousands of readings maps to thousands of resources; reading, writing,
versioning and indexing them one statement each cost seconds (issue 15). Here each step is
one statement per chunk of rows (`insert_many` for inserts, an `executemany` for updates),
and what is stored is exactly what a row-at-a-time write stored: the same rows, versions
and index rows, new rows numbered in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, select, update

from adapter.store.bulk import insert_many
from adapter.store.references import key_of, keyed
from adapter.store.schema import resource_versions, resources, search_index
from adapter.store.search_index import INDEX_COLUMNS, index_values, references_in
from mappings.common.identity import Identity
from mappings.jsontypes import Resource

# Keys (or row numbers) per statement: well below SQLite's 32,766 bound values and
# PostgreSQL's 65,535, and short enough for either to plan quickly.
CHUNK = 2000
_VERSION_COLUMNS = (
    "resource_pk",
    "version",
    "content",
    "deleted",
    "recorded_at",
    "source",
    "submission_id",
)
_NEW_COLUMNS = (
    "tenant",
    "resource_type",
    "logical_id",
    "identifier_system",
    "identifier_value",
    "patient_key",
    "scope_key",
    "version",
    "content_hash",
    "content",
    "deleted",
    "last_updated",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Incoming:
    """One mapped resource, as it is to be stored."""

    key: str
    """`Type/logical-id`."""
    identity: Identity
    resource: Resource
    content: str
    digest: str
    scope: str | None
    keeps_scope: bool = False
    """True for another document's resource this one changes (a Flag a newer screening
    ends): it stays in its own scope, so its document's resend still holds it."""


@dataclass(frozen=True)
class Current:
    """What the store holds now under a key (a tombstone included)."""

    pk: int
    version: int
    content_hash: str
    deleted: bool
    scope: str | None = None


@dataclass(frozen=True)
class Stale:
    """A current row of a scope that the new document no longer produces."""

    pk: int
    key: str
    version: int


@dataclass(frozen=True)
class Written:
    """Who writes: the tenant, the document's patient, the submission, and when."""

    tenant: str
    patient_key: str
    submission_id: int
    now: datetime


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def currents(conn: Connection, tenant: str, keys: Sequence[str]) -> dict[str, Current]:
    """The stored row of each of `keys` that has one."""
    found: dict[str, Current] = {}
    wanted = set(keys)
    columns = (
        resources.c.pk,
        resources.c.resource_type,
        resources.c.logical_id,
        resources.c.version,
        resources.c.content_hash,
        resources.c.deleted,
        resources.c.scope_key,
    )
    for chunk in chunks(keys):
        for row in conn.execute(select(*columns).where(keyed(tenant, chunk))):
            key = key_of(row)
            if key in wanted:
                scope = None if row.scope_key is None else str(row.scope_key)
                found[key] = Current(
                    int(row.pk), int(row.version), str(row.content_hash), bool(row.deleted), scope
                )
    return found


def clinic_latest(conn: Connection, pks: Sequence[int]) -> dict[int, str | None]:
    """The content of each resource's newest version from the clinic (None: a tombstone),
    for those that have one."""
    latest = (
        select(resource_versions.c.resource_pk, func.max(resource_versions.c.version).label("v"))
        .where(resource_versions.c.source == "clinic")
        .group_by(resource_versions.c.resource_pk)
    )
    found: dict[int, str | None] = {}
    for chunk in chunks(pks):
        newest = latest.where(resource_versions.c.resource_pk.in_(chunk)).subquery()
        query = select(
            resource_versions.c.resource_pk,
            resource_versions.c.content,
            resource_versions.c.deleted,
        ).join(
            newest,
            (resource_versions.c.resource_pk == newest.c.resource_pk)
            & (resource_versions.c.version == newest.c.v),
        )
        for pk, content, deleted in conn.execute(query):
            found[int(pk)] = None if deleted else str(content)
    return found


def insert_new(conn: Connection, who: Written, items: Sequence[Incoming]) -> None:
    """Store `items` (none stored yet) at version 1, versioned and indexed."""
    rows = [
        (
            who.tenant,
            item.identity.resource_type,
            item.identity.id,
            item.identity.system,
            item.identity.value,
            who.patient_key,
            item.scope,
            1,
            item.digest,
            item.content,
            False,
            who.now,
        )
        for item in items
    ]
    insert_many(conn, resources, _NEW_COLUMNS, rows)
    pks = _pks(conn, who.tenant, [item.key for item in items])
    _record_versions(conn, who, [(pks[i.key], 1, i.content, False) for i in items])
    _index(conn, who.tenant, [(pks[item.key], item) for item in items])


def update_changed(
    conn: Connection, who: Written, changes: Sequence[tuple[Incoming, Current]]
) -> None:
    """Store each item as the next version of its current row, versioned and reindexed."""
    if not changes:
        return
    statement = (
        update(resources)
        .where(resources.c.pk == bindparam("row_pk"))
        .values(
            version=bindparam("row_version"),
            content_hash=bindparam("row_hash"),
            content=bindparam("row_content"),
            deleted=False,
            scope_key=bindparam("row_scope"),
            last_updated=who.now,
        )
    )
    params = [
        {
            "row_pk": row.pk,
            "row_version": row.version + 1,
            "row_hash": item.digest,
            "row_content": item.content,
            "row_scope": row.scope if item.keeps_scope else item.scope,
        }
        for item, row in changes
    ]
    conn.execute(statement, params)
    _record_versions(conn, who, [(r.pk, r.version + 1, i.content, False) for i, r in changes])
    _unindex(conn, [row.pk for _, row in changes])
    _index(conn, who.tenant, [(row.pk, item) for item, row in changes])


def scope_rows(conn: Connection, tenant: str, scope_key: str) -> list[Stale]:
    """The current, undeleted rows of a scope, oldest first."""
    query = (
        select(
            resources.c.pk, resources.c.resource_type, resources.c.logical_id, resources.c.version
        )
        .where(
            resources.c.tenant == tenant,
            resources.c.scope_key == scope_key,
            resources.c.deleted.is_(False),
        )
        .order_by(resources.c.pk)
    )
    return [Stale(int(row.pk), key_of(row), int(row.version)) for row in conn.execute(query)]


def tombstone(conn: Connection, who: Written, stale: Sequence[Stale]) -> None:
    """Make each row a tombstone: a new version holding its last content, flagged deleted,
    and no index rows."""
    if not stale:
        return
    contents = _contents(conn, [row.pk for row in stale])
    statement = (
        update(resources)
        .where(resources.c.pk == bindparam("row_pk"))
        .values(version=bindparam("row_version"), deleted=True, last_updated=who.now)
    )
    conn.execute(statement, [{"row_pk": r.pk, "row_version": r.version + 1} for r in stale])
    _record_versions(conn, who, [(r.pk, r.version + 1, contents[r.pk], True) for r in stale])
    _unindex(conn, [row.pk for row in stale])


def _pks(conn: Connection, tenant: str, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(keys):
        query = select(resources.c.pk, resources.c.resource_type, resources.c.logical_id)
        found.update(
            {key_of(r): int(r.pk) for r in conn.execute(query.where(keyed(tenant, chunk)))}
        )
    return found


def _contents(conn: Connection, pks: Sequence[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunks(pks):
        query = select(resources.c.pk, resources.c.content).where(resources.c.pk.in_(chunk))
        found.update({int(pk): str(content) for pk, content in conn.execute(query)})
    return found


def _record_versions(
    conn: Connection, who: Written, versions: Iterable[tuple[int, int, str, bool]]
) -> None:
    rows: list[tuple[Any, ...]] = [
        (pk, version, content, deleted, who.now, "clinic", who.submission_id)
        for pk, version, content, deleted in versions
    ]
    insert_many(conn, resource_versions, _VERSION_COLUMNS, rows)


def _index(conn: Connection, tenant: str, items: Iterable[tuple[int, Incoming]]) -> None:
    rows = [
        row
        for pk, item in items
        for row in index_values(
            pk, tenant, item.identity.resource_type, item.resource, references_in(item.content)
        )
    ]
    insert_many(conn, search_index, INDEX_COLUMNS, rows)


def _unindex(conn: Connection, pks: Sequence[int]) -> None:
    for chunk in chunks(pks):
        conn.execute(delete(search_index).where(search_index.c.resource_pk.in_(chunk)))
