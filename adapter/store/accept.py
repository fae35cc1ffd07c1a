"""Accept = store + enqueue, atomically: mapped resources and their outbox entry in ONE transaction.

The caller opens the transaction (`with write_transaction(engine) as conn: accept(...)`); a
crash anywhere inside leaves neither the resources nor the outbox entry, so nothing
accepted is ever waiting without work to push it, and no work points at missing data.

Versioning is by content: a resource whose JSON is byte-identical to the current version,
or to the clinic's own latest version when the EHR has changed it since, is left alone (an
identical resend creates no versions and no outbox work, and never undoes an EHR edit). Every write
also rewrites the resource's FHIR search index rows, and a tombstone removes them. Resources a
document used to produce and no longer does (a vitals reading removed from an encounter,
say) become tombstones, so the EHR is told to delete them rather than keep stale data.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update

from adapter.store.schema import PENDING, outbox, resource_versions, resources, submissions
from adapter.store.search_index import reindex, unindex
from mappings.bundle import resource_identity
from mappings.context import MappingContext
from mappings.jsontypes import Resource
from mappings.serialize import dumps

# Resources every patient's Bundles may refer to.
TENANT_SHARED_TYPES = frozenset({"Organization", "Device", "Practitioner", "PractitionerRole"})
# Resources several encounters share: never tombstoned because one document left them out.
SHARED_TYPES = TENANT_SHARED_TYPES | {"Patient"}


@dataclass(frozen=True)
class Submission:
    """What is being accepted: who sent it, which encounter, which document."""

    tenant: str
    kind: str
    encounter_key: str
    patient_key: str
    scope_key: str
    document: bytes


@dataclass
class AcceptResult:
    submission_id: int
    """The store's number: for logs and operators, never shown to a clinic."""
    public_id: str
    """What the clinic sees (receipt, status URL): random, so nothing counts through it."""
    outbox_id: int | None = None
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        return self.created + self.updated + self.deleted


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_public_id() -> str:
    """A submission's public id: 128 random bits, as 32 hex digits."""
    return secrets.token_hex(16)


def accept(
    conn: Connection,
    sub: Submission,
    mapped: Sequence[Resource],
    ctx: MappingContext,
    now: datetime,
) -> AcceptResult:
    """Store `mapped` as the current state of `sub`'s resources and enqueue what changed."""
    public_id = new_public_id()
    submission_id = conn.execute(
        insert(submissions)
        .values(
            tenant=sub.tenant,
            public_id=public_id,
            kind=sub.kind,
            encounter_key=sub.encounter_key,
            patient_key=sub.patient_key,
            content_hash=sha256(sub.document),
            received_at=now,
            changed_count=0,
        )
        .returning(submissions.c.id)
    ).scalar_one()
    result = AcceptResult(submission_id, public_id)
    kept: set[str] = set()
    for res in mapped:
        key = _store_resource(conn, sub, res, ctx, submission_id, now, result)
        kept.add(key)
    _tombstone_stale(conn, sub, kept, submission_id, now, result)
    if result.changed:
        result.outbox_id = _enqueue(conn, sub, submission_id, result.changed, now)
    conn.execute(
        update(submissions)
        .where(submissions.c.id == submission_id)
        .values(changed_count=len(result.changed), outbox_id=result.outbox_id)
    )
    return result


def _store_resource(
    conn: Connection,
    sub: Submission,
    res: Resource,
    ctx: MappingContext,
    submission_id: int,
    now: datetime,
    result: AcceptResult,
) -> str:
    ident = resource_identity(res, ctx)
    content = dumps(res).decode()
    digest = sha256(content.encode())
    scope = None if ident.resource_type in SHARED_TYPES else sub.scope_key
    key = f"{ident.resource_type}/{ident.id}"
    current = _current(conn, sub.tenant, ident.resource_type, ident.id)
    if current is None:
        pk = conn.execute(
            insert(resources)
            .values(
                tenant=sub.tenant,
                resource_type=ident.resource_type,
                logical_id=ident.id,
                identifier_system=ident.system,
                identifier_value=ident.value,
                patient_key=sub.patient_key,
                scope_key=scope,
                version=1,
                content_hash=digest,
                content=content,
                deleted=False,
                last_updated=now,
            )
            .returning(resources.c.pk)
        ).scalar_one()
        _record_version(conn, pk, 1, content, False, now, submission_id)
        reindex(conn, pk, sub.tenant, ident.resource_type, res)
        result.created.append(key)
    elif (current.content_hash == digest and not current.deleted) or _clinic_sent(
        conn, current.pk, digest
    ):
        result.unchanged.append(key)
    else:
        version = current.version + 1
        conn.execute(
            update(resources)
            .where(resources.c.pk == current.pk)
            .values(
                version=version,
                content_hash=digest,
                content=content,
                deleted=False,
                scope_key=scope,
                last_updated=now,
            )
        )
        _record_version(conn, current.pk, version, content, False, now, submission_id)
        reindex(conn, current.pk, sub.tenant, ident.resource_type, res)
        result.updated.append(key)
    return key


def _tombstone_stale(
    conn: Connection,
    sub: Submission,
    kept: set[str],
    submission_id: int,
    now: datetime,
    result: AcceptResult,
) -> None:
    rows = conn.execute(
        select(resources).where(
            resources.c.tenant == sub.tenant,
            resources.c.scope_key == sub.scope_key,
            resources.c.deleted.is_(False),
        )
    ).all()
    for row in rows:
        key = f"{row.resource_type}/{row.logical_id}"
        if key in kept:
            continue
        version = row.version + 1
        conn.execute(
            update(resources)
            .where(resources.c.pk == row.pk)
            .values(version=version, deleted=True, last_updated=now)
        )
        _record_version(conn, row.pk, version, row.content, True, now, submission_id)
        unindex(conn, row.pk)
        result.deleted.append(key)


def _current(
    conn: Connection, tenant: str, resource_type: str, logical_id: str
) -> Row[tuple[object, ...]] | None:
    return conn.execute(
        select(resources).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.logical_id == logical_id,
        )
    ).first()


def _clinic_sent(conn: Connection, pk: int, digest: str) -> bool:
    """True when the clinic's own latest version of the resource is this content: the EHR
    changed it since (adapter.sync.merge), and a resend of what the clinic sent before is
    no change of the clinic's mind, so it must not undo the EHR's edit or deletion."""
    latest = conn.execute(
        select(resource_versions.c.content, resource_versions.c.deleted)
        .where(resource_versions.c.resource_pk == pk, resource_versions.c.source == "clinic")
        .order_by(resource_versions.c.version.desc())
        .limit(1)
    ).first()
    return latest is not None and not latest.deleted and sha256(latest.content.encode()) == digest


def _record_version(
    conn: Connection,
    pk: int,
    version: int,
    content: str,
    deleted: bool,
    now: datetime,
    submission_id: int,
) -> None:
    conn.execute(
        insert(resource_versions).values(
            resource_pk=pk,
            version=version,
            content=content,
            deleted=deleted,
            recorded_at=now,
            source="clinic",
            submission_id=submission_id,
        )
    )


def _enqueue(
    conn: Connection, sub: Submission, submission_id: int, keys: list[str], now: datetime
) -> int:
    """One outbox entry for this change set, merged into a waiting one for the encounter.

    Merging keeps at most one entry per encounter waiting, so a burst of resends becomes
    one push of the newest content instead of a queue of stale intermediate states.
    """
    waiting = conn.execute(
        select(outbox.c.id, outbox.c.resource_keys)
        .where(
            outbox.c.tenant == sub.tenant,
            outbox.c.encounter_key == sub.encounter_key,
            outbox.c.state == PENDING,
            outbox.c.lease_owner.is_(None),
        )
        .order_by(outbox.c.id.desc())
        .limit(1)
    ).first()
    if waiting is not None:
        merged = list(dict.fromkeys([*waiting.resource_keys, *keys]))
        conn.execute(
            update(outbox)
            .where(outbox.c.id == waiting.id)
            .values(
                resource_keys=merged,
                carries_shared=carries_shared(merged),
                submission_id=submission_id,
                updated_at=now,
            )
        )
        return int(waiting.id)
    return int(
        conn.execute(
            insert(outbox)
            .values(
                tenant=sub.tenant,
                patient_key=sub.patient_key,
                encounter_key=sub.encounter_key,
                submission_id=submission_id,
                resource_keys=keys,
                carries_shared=carries_shared(keys),
                state=PENDING,
                attempts=0,
                available_at=now,
                created_at=now,
                updated_at=now,
            )
            .returning(outbox.c.id)
        ).scalar_one()
    )


def carries_shared(keys: list[str]) -> bool:
    return any(key.split("/", 1)[0] in TENANT_SHARED_TYPES for key in keys)
