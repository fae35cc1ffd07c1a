"""Accept = store + enqueue, atomically: mapped resources and their outbox entry in ONE transaction
(with the notifications of the tenant's subscriptions that the change fires).

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
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from adapter.store.resource_writes import (
    Current,
    Incoming,
    Written,
    clinic_latest,
    currents,
    insert_new,
    scope_rows,
    tombstone,
    update_changed,
)
from adapter.store.schema import PENDING, outbox, submissions
from adapter.store.subscription_events import CREATE, DELETE, UPDATE, on_accepted
from mappings.common.bundle import resource_identity
from mappings.common.serialize import dumps
from mappings.context import MappingContext
from mappings.jsontypes import Resource

# Resources every patient's Bundles may refer to (our REMS Questionnaire by its canonical).
TENANT_SHARED_TYPES = frozenset(
    {"Organization", "Device", "Practitioner", "PractitionerRole", "Questionnaire"}
)
# Resources several encounters share: never tombstoned because one document left them out
# (a treatment course's CarePlan is named by every encounter of the course).
SHARED_TYPES = TENANT_SHARED_TYPES | {"Patient", "CarePlan"}


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
    others: list[str] = field(default_factory=list)
    """Other documents' resources this one changed (a Flag it ended): pushed with it, never
    listed as its own (a receipt names the document's resources only)."""

    @property
    def changed(self) -> list[str]:
        return self.created + self.updated + self.deleted + self.others


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
    others: Sequence[Resource] = (),
) -> AcceptResult:
    """Store `mapped` as the current state of `sub`'s resources and enqueue what changed;
    `others` are new versions of resources the store holds for other documents of the
    patient (a Flag a newer assessment ends), stored in their own documents' scopes and
    pushed with this one."""
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
    who = Written(sub.tenant, sub.patient_key, submission_id, now)
    incoming = [_incoming(sub, res, ctx) for res in mapped]
    for batch in _distinct_batches(incoming):
        _store_batch(conn, who, batch, result)
    kept = [replace(_incoming(sub, res, ctx), keeps_scope=True) for res in others]
    if kept:
        theirs = AcceptResult(submission_id, public_id)
        _store_batch(conn, who, kept, theirs)
        result.others = theirs.updated
    _tombstone_stale(conn, sub, who, {item.key for item in incoming}, result)
    if result.changed:
        result.outbox_id = _enqueue(conn, sub, submission_id, result.changed, now)
        actions = dict.fromkeys(result.created, CREATE) | dict.fromkeys(result.updated, UPDATE)
        # The Flags of other documents this one ended are events too (the alert topic's).
        actions |= dict.fromkeys(result.others, UPDATE) | dict.fromkeys(result.deleted, DELETE)
        given = ((item.key, item.resource) for item in [*incoming, *kept])
        on_accepted(conn, sub.tenant, sub.patient_key, actions, given, now)
    conn.execute(
        update(submissions)
        .where(submissions.c.id == submission_id)
        .values(changed_count=len(result.changed), outbox_id=result.outbox_id)
    )
    return result


def _incoming(sub: Submission, res: Resource, ctx: MappingContext) -> Incoming:
    ident = resource_identity(res, ctx)
    content = dumps(res).decode()
    scope = None if ident.resource_type in SHARED_TYPES else sub.scope_key
    key = f"{ident.resource_type}/{ident.id}"
    return Incoming(key, ident, res, content, sha256(content.encode()), scope)


def _distinct_batches(items: Sequence[Incoming]) -> list[list[Incoming]]:
    """`items` in order, cut where a key comes again: a resource mapped twice is stored
    twice, the second time over the first, as when resources were stored one by one."""
    batches: list[list[Incoming]] = [[]]
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            batches.append([])
            seen = set()
        batches[-1].append(item)
        seen.add(item.key)
    return batches


def _store_batch(
    conn: Connection, who: Written, batch: Sequence[Incoming], result: AcceptResult
) -> None:
    """Store a batch of distinct resources: new ones created, changed ones given a new
    version, the rest left alone; the result lists each key in the order given."""
    current = currents(conn, who.tenant, [item.key for item in batch])
    doubtful = [
        row.pk
        for item in batch
        if (row := current.get(item.key)) is not None
        and (row.content_hash != item.digest or row.deleted)
    ]
    sent = clinic_latest(conn, doubtful)
    new: list[Incoming] = []
    changed: list[tuple[Incoming, Current]] = []
    for item in batch:
        row = current.get(item.key)
        if row is None:
            new.append(item)
            result.created.append(item.key)
        elif (row.content_hash == item.digest and not row.deleted) or _clinic_sent(
            sent.get(row.pk), item.digest
        ):
            result.unchanged.append(item.key)
        else:
            changed.append((item, row))
            result.updated.append(item.key)
    insert_new(conn, who, new)
    update_changed(conn, who, changed)


def _clinic_sent(latest: str | None, digest: str) -> bool:
    """True when the clinic's own latest version of the resource is this content: the EHR
    changed it since (adapter.sync.pull.merge), and a resend of what the clinic sent before is
    no change of the clinic's mind, so it must not undo the EHR's edit or deletion."""
    return latest is not None and sha256(latest.encode()) == digest


def _tombstone_stale(
    conn: Connection, sub: Submission, who: Written, kept: set[str], result: AcceptResult
) -> None:
    stale = [row for row in scope_rows(conn, sub.tenant, sub.scope_key) if row.key not in kept]
    tombstone(conn, who, stale)
    result.deleted.extend(row.key for row in stale)


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
