"""Our resources as the EHR knows them: found by the EHR's ids or our identifiers, and the
versions the pull (`adapter.sync.pull.merge`) and the push (`adapter.sync.push.worker`)
write of them.

The pull writes many rows a page: its imports go in a few statements of many rows each
(`adapter.store.bulk`), their values in the order of `IMPORTED_COLUMNS` and
`VERSION_COLUMNS`; the statements it runs for every page are built once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from adapter.store.accept import sha256
from adapter.store.bulk import insert_many
from adapter.store.schema import resource_versions, resources, search_index
from adapter.store.search_index import INDEX_COLUMNS

# The columns of an imported resource's row, in the order of its values.
IMPORTED_COLUMNS = (
    "tenant", "resource_type", "logical_id", "identifier_system", "identifier_value",
    "patient_key", "scope_key", "version", "content_hash", "content", "deleted",
    "last_updated", "ehr_id", "ehr_version", "ehr_etag",
)  # fmt: skip
# The columns of a version's row, in the order of its values.
VERSION_COLUMNS = (
    "resource_pk", "version", "content", "deleted", "recorded_at", "source", "submission_id",
    "provenance",
)  # fmt: skip


@dataclass(frozen=True)
class Local:
    """Our row for an EHR resource."""

    pk: int
    resource_type: str
    logical_id: str
    patient_key: str | None
    version: int
    content: str
    deleted: bool
    ehr_id: str | None
    ehr_version: str | None
    identifier_system: str
    identifier_value: str

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.logical_id}"


@dataclass(frozen=True)
class EhrCopy:
    """What the EHR calls one of our resources now (all None: it holds none any more)."""

    resource_type: str
    logical_id: str
    ehr_id: str | None
    ehr_version: str | None
    ehr_etag: str | None


def load_local(conn: Connection, pk: int) -> Local | None:
    row = conn.execute(_local_columns().where(resources.c.pk == pk)).first()
    return None if row is None else _local(row)


def held_by_ehr_ids(
    conn: Connection, tenant: str, resource_type: str, ehr_ids: Collection[str]
) -> list[Local]:
    """The tenant's rows of `resource_type` recorded under one of these EHR ids."""
    found = conn.execute(
        _BY_EHR_ID, {"tenant": tenant, "type": resource_type, "ids": sorted(ehr_ids)}
    )
    return [_local(row) for row in found]


def held_by_identifiers(
    conn: Connection,
    tenant: str,
    types: Collection[str],
    systems: Collection[str],
    values: Collection[str],
) -> list[Local]:
    """The tenant's rows of one of `types` whose identifier's system and value are among
    these (every combination: the caller picks the pairs it asked for)."""
    found = conn.execute(
        _local_columns().where(
            resources.c.tenant == tenant,
            resources.c.resource_type.in_(types),
            resources.c.identifier_system.in_(systems),
            resources.c.identifier_value.in_(values),
        )
    )
    return [_local(row) for row in found]


def import_resources(conn: Connection, tenant: str, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert imported resources (values in `IMPORTED_COLUMNS` order, this tenant's);
    their keys (`pk`), in the order of `rows`."""
    # One executemany, then one query for the keys: SQLite cannot return keys in parameter
    # order from a many-row insert.
    insert_many(conn, resources, IMPORTED_COLUMNS, rows)
    ids = [row[2] for row in rows]
    types = sorted({row[1] for row in rows})
    keyed = conn.execute(_KEYS, {"tenant": tenant, "types": types, "ids": ids})
    found = {logical_id: pk for logical_id, pk in keyed}
    return [int(found[logical_id]) for logical_id in ids]


def insert_versions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert versions, values in `VERSION_COLUMNS` order."""
    insert_many(conn, resource_versions, VERSION_COLUMNS, rows)


def insert_index(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert search index rows (`adapter.store.search_index.index_values`)."""
    insert_many(conn, search_index, INDEX_COLUMNS, rows)


def set_current(
    conn: Connection, pk: int, version: int, text: str, now: datetime, ehr: EhrCopy
) -> None:
    """Make `text` the live current `version` of the resource, as the EHR's `ehr`."""
    conn.execute(
        update(resources)
        .where(resources.c.pk == pk)
        .values(
            version=version,
            content=text,
            content_hash=sha256(text.encode()),
            deleted=False,
            last_updated=now,
            **_ehr_fields(ehr),
        )
    )


def set_deleted(conn: Connection, pk: int, version: int, now: datetime, ehr: EhrCopy) -> None:
    """Make the resource's current `version` a tombstone, the EHR's version `ehr`."""
    conn.execute(
        update(resources)
        .where(resources.c.pk == pk)
        .values(
            version=version,
            deleted=True,
            last_updated=now,
            ehr_version=ehr.ehr_version,
            ehr_etag=ehr.ehr_etag,
        )
    )


def set_ehr_copy(conn: Connection, pk: int, ehr: EhrCopy) -> None:
    """Record what the EHR calls the resource now, its content unchanged."""
    conn.execute(update(resources).where(resources.c.pk == pk).values(**_ehr_fields(ehr)))


def record_ehr_copies(conn: Connection, tenant: str, copies: Sequence[EhrCopy]) -> None:
    """Record what the EHR calls each of these resources of the tenant, in one statement."""
    if not copies:
        return
    rows = [
        {
            "b_tenant": tenant,
            "b_type": copy.resource_type,
            "b_id": copy.logical_id,
            "b_ehr_id": copy.ehr_id,
            "b_version": copy.ehr_version,
            "b_etag": copy.ehr_etag,
        }
        for copy in copies
    ]
    conn.execute(_RECORD_COPY, rows)


def _ehr_fields(ehr: EhrCopy) -> dict[str, object]:
    return {"ehr_id": ehr.ehr_id, "ehr_version": ehr.ehr_version, "ehr_etag": ehr.ehr_etag}


def _local_columns() -> Any:
    return select(
        resources.c.pk,
        resources.c.resource_type,
        resources.c.logical_id,
        resources.c.patient_key,
        resources.c.version,
        resources.c.content,
        resources.c.deleted,
        resources.c.ehr_id,
        resources.c.ehr_version,
        resources.c.identifier_system,
        resources.c.identifier_value,
    )


# Statements the merge runs for every page, built once (their values bound at each run).
_BY_EHR_ID = _local_columns().where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == bindparam("type"),
    resources.c.ehr_id.in_(bindparam("ids", expanding=True)),
)
_KEYS = select(resources.c.logical_id, resources.c.pk).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type.in_(bindparam("types", expanding=True)),
    resources.c.logical_id.in_(bindparam("ids", expanding=True)),
)
_RECORD_COPY = (
    update(resources)
    .where(
        resources.c.tenant == bindparam("b_tenant"),
        resources.c.resource_type == bindparam("b_type"),
        resources.c.logical_id == bindparam("b_id"),
    )
    .values(
        ehr_id=bindparam("b_ehr_id"),
        ehr_version=bindparam("b_version"),
        ehr_etag=bindparam("b_etag"),
    )
)


def _local(row: Row[Any]) -> Local:
    return Local(
        int(row.pk),
        str(row.resource_type),
        str(row.logical_id),
        None if row.patient_key is None else str(row.patient_key),
        int(row.version),
        str(row.content),
        bool(row.deleted),
        None if row.ehr_id is None else str(row.ehr_id),
        None if row.ehr_version is None else str(row.ehr_version),
        str(row.identifier_system),
        str(row.identifier_value),
    )
