"""Raising subscription events, inside the transaction of the change that caused them.

Accepting a clinic's document (`adapter.store.accept`), merging a page of the pull or
taking the EHR's side of a conflict (`adapter.sync.pull.merge`) and parking an outbox
entry (`adapter.store.outbox`) call here with what they changed, before they commit:
each live subscription of the tenant whose topic fires and whose filters pass gets one
numbered notification per change, its number taken from the subscription's
`events_count` in the same statement. So a change and its notifications commit
together or not at all, and event numbers have no gaps.

A tenant without subscriptions costs one indexed read per change set. The alert topic
fires on a change of standing (`subscription_topics.is_alert_transition`), so when a
subscription of it is live, the version before each changed Flag or DetectedIssue is read
too (by its key and version number: the change's own version is already written).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import orjson
from sqlalchemy import Connection, insert, select, update

from adapter.store.references import key_of, keyed
from adapter.store.schema import resource_versions, resources, subscriptions
from adapter.store.schema import subscription_notifications as notes
from adapter.store.subscription_topics import (
    ALERT,
    ALERT_TYPES,
    CLINIC,
    CREATE,
    DELETE,
    EHR,
    PUSH,
    UPDATE,
    Change,
    Filter,
    fires,
    passes,
    stands,
)
from adapter.store.subscriptions import ACTIVE, ERROR, EVENT, REQUESTED
from mappings.jsontypes import Resource

# Events are kept for a subscription in error too: `$events` can still give them.
LIVE = (REQUESTED, ACTIVE, ERROR)


@dataclass(frozen=True)
class _Live:
    pk: int
    topic: str
    filters: tuple[Filter, ...]


def has_live(conn: Connection, tenant: str) -> bool:
    return bool(_live(conn, tenant))


def raise_events(conn: Connection, tenant: str, changes: Sequence[Change], now: datetime) -> int:
    """Queue a notification per matching change for each live subscription; how many."""
    if not changes:
        return 0
    return _raise(conn, tenant, _live(conn, tenant), changes, now)


def on_accepted(
    conn: Connection,
    tenant: str,
    mrn: str,
    changed: Mapping[str, str],
    resources_given: Iterable[tuple[str, Resource]],
    now: datetime,
) -> int:
    """Events of a clinic's accepted document: `changed` maps each key to its action,
    `resources_given` the document's resources by key (for an alert's status)."""
    live = _live(conn, tenant)
    if not live or not changed:
        return 0
    contents = dict(resources_given)
    versions = _versions(conn, tenant, changed)
    patient = patient_ids(conn, tenant, [mrn]).get(mrn)
    changes = [
        change_of(CLINIC, key, versions.get(key, 1), action, patient, _status(contents.get(key)))
        for key, action in changed.items()
    ]
    return _raise(conn, tenant, live, changes, now)


@dataclass(frozen=True)
class Pulled:
    """A change the pull wrote: `mrn`, the patient key its row carries."""

    key: str
    version: int
    action: str
    mrn: str | None
    status: str | None = None


def on_pulled(conn: Connection, tenant: str, pulled: Sequence[Pulled], now: datetime) -> int:
    """Events of what the pull (or taking the EHR's side of a conflict) just wrote."""
    live = _live(conn, tenant)
    if not live or not pulled:
        return 0
    patients = patient_ids(conn, tenant, [p.mrn for p in pulled if p.mrn])
    changes = [
        change_of(EHR, p.key, p.version, p.action, patients.get(p.mrn or ""), p.status)
        for p in pulled
    ]
    return _raise(conn, tenant, live, changes, now)


def on_parked(conn: Connection, tenant: str, mrn: str, keys: Sequence[str], now: datetime) -> int:
    """The event of an outbox entry just parked: its Encounter (else its first resource)."""
    live = _live(conn, tenant)
    if not live or not keys:
        return 0
    focus = next((key for key in keys if key.startswith("Encounter/")), keys[0])
    version = _versions(conn, tenant, [focus]).get(focus, 1)
    patient = patient_ids(conn, tenant, [mrn]).get(mrn)
    return _raise(conn, tenant, live, [change_of(PUSH, focus, version, UPDATE, patient)], now)


def change_of(
    source: str,
    key: str,
    version: int,
    action: str,
    patient: str | None,
    status: str | None = None,
) -> Change:
    """The `Change` of the resource `key` (`Type/id`); a Patient is its own patient."""
    kind, logical_id = key.split("/", 1)
    own = logical_id if kind == "Patient" else patient
    return Change(source, kind, logical_id, version, action, own, status)


def patient_ids(conn: Connection, tenant: str, mrns: Iterable[str]) -> dict[str, str]:
    """The logical ids of the tenant's Patients by the patient key (MRN) rows carry."""
    wanted = {mrn for mrn in mrns if mrn}
    if not wanted:
        return {}
    rows = conn.execute(
        select(resources.c.patient_key, resources.c.logical_id).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == "Patient",
            resources.c.patient_key.in_(wanted),
        )
    )
    return {str(row.patient_key): str(row.logical_id) for row in rows}


def status_of(resource: Resource | None) -> str | None:
    return _status(resource)


def _status(resource: Resource | None) -> str | None:
    found = None if resource is None else resource.get("status")
    return found if isinstance(found, str) else None


def _versions(conn: Connection, tenant: str, keys: Iterable[str]) -> dict[str, int]:
    wanted = set(keys)
    rows = conn.execute(
        select(resources.c.resource_type, resources.c.logical_id, resources.c.version).where(
            keyed(tenant, wanted)
        )
    )
    return {key: int(row.version) for row in rows if (key := key_of(row)) in wanted}


def _live(conn: Connection, tenant: str) -> list[_Live]:
    rows = conn.execute(
        select(subscriptions.c.id, subscriptions.c.topic, subscriptions.c.filters)
        .where(subscriptions.c.tenant == tenant, subscriptions.c.status.in_(LIVE))
        # One order for every writer: two transactions numbering events of the same
        # subscriptions lock their rows in the same order, never waiting on each other.
        .order_by(subscriptions.c.id)
    )
    return [
        _Live(int(row.id), str(row.topic), tuple(Filter(t, p) for t, p in row.filters))
        for row in rows
    ]


def _with_previous(conn: Connection, tenant: str, changes: Sequence[Change]) -> list[Change]:
    """`changes`, each alert's `was_standing` read from its version before this change (a
    version that cannot be found counts as standing: an ending is then never missed)."""
    asked = {
        (c.key, c.version - 1)
        for c in changes
        if c.resource_type in ALERT_TYPES and c.version > 1 and c.source != PUSH
    }
    if not asked:
        return list(changes)
    rows = conn.execute(
        select(
            resources.c.resource_type,
            resources.c.logical_id,
            resource_versions.c.version,
            resource_versions.c.content,
            resource_versions.c.deleted,
        )
        .join(resources, resources.c.pk == resource_versions.c.resource_pk)
        .where(
            keyed(tenant, {key for key, _ in asked}),
            resource_versions.c.version.in_({version for _, version in asked}),
        )
    )
    standing = {
        (key_of(row), int(row.version)): not row.deleted and _stands(str(row.content))
        for row in rows
    }
    return [
        replace(c, was_standing=standing.get((c.key, c.version - 1), True))
        if c.resource_type in ALERT_TYPES and c.version > 1
        else c
        for c in changes
    ]


def _stands(content: str) -> bool:
    found = orjson.loads(content).get("status")
    return stands(found if isinstance(found, str) else None)


def _raise(
    conn: Connection,
    tenant: str,
    live: Sequence[_Live],
    changes: Sequence[Change],
    now: datetime,
) -> int:
    if any(sub.topic == ALERT for sub in live):
        changes = _with_previous(conn, tenant, changes)
    raised = 0
    for sub in live:
        mine = [c for c in changes if fires(sub.topic, c) and passes(sub.filters, c)]
        if not mine:
            continue
        last = conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == sub.pk)
            .values(events_count=subscriptions.c.events_count + len(mine))
            .returning(subscriptions.c.events_count)
        ).scalar_one()
        first = int(last) - len(mine) + 1
        conn.execute(
            insert(notes),
            [
                {
                    "subscription_id": sub.pk,
                    "kind": EVENT,
                    "event_number": first + offset,
                    "focus_type": change.resource_type,
                    "focus_id": change.logical_id,
                    "focus_version": change.version,
                    "action": change.action,
                    "occurred_at": now,
                }
                for offset, change in enumerate(mine)
            ],
        )
        raised += len(mine)
    return raised


__all__ = [
    "CREATE",
    "DELETE",
    "UPDATE",
    "Pulled",
    "change_of",
    "has_live",
    "on_accepted",
    "on_parked",
    "on_pulled",
    "patient_ids",
    "raise_events",
    "status_of",
]
