"""The outbox's life cycle: claim due work, then settle it as done, retry, dead or conflict.

    pending ──claim──▶ in_flight ──▶ done
       ▲                  │ ├──▶ dead      permanent refusal; OperationOutcome kept; replayable
       └──── retry ───────┘ └──▶ conflict  the EHR changed it since we last saw it; replayable

A claim is a lease (`lease_owner`, `lease_until`): a worker killed mid-push leaves its
entries in flight until the lease runs out, then another worker takes them again. The
push is an idempotent conditional update, so sending twice after a crash leaves one copy.

Order per patient without head-of-line blocking: an entry waits only for earlier entries
it depends on: entries of the same patient that touch one of its resources, carry the
patient itself or carry a resource one of its resources refers to (a reading added to an
encounter still on its way), and entries of any patient that carry a resource every
Bundle refers to (the clinic, a practitioner). So at most one message per resource is in
flight, nothing is sent before what it refers to exists, and a parked (dead or
conflicting) entry holds back exactly its dependants, never other patients' work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Row, and_, case, func, insert, or_, select, update

from adapter.store.references import key_of, keyed, referenced_keys
from adapter.store.schema import (
    CONFLICT,
    DEAD,
    DONE,
    IN_FLIGHT,
    PENDING,
    audit,
    outbox,
    resources,
    submissions,
)
from adapter.store.subscription_events import on_parked

__all__ = [
    "CONFLICT",
    "DEAD",
    "DONE",
    "IN_FLIGHT",
    "PENDING",
    "Entry",
    "Waiting",
    "claim",
    "counts",
    "narrow",
    "record_parked",
    "replay",
    "settle",
    "waiting",
]
UNFINISHED = (PENDING, IN_FLIGHT, DEAD, CONFLICT)


@dataclass(frozen=True)
class Entry:
    id: int
    tenant: str
    patient_key: str
    encounter_key: str
    resource_keys: tuple[str, ...]
    attempts: int
    created_at: datetime
    """When the entry was first queued (UTC); a resend merged into it keeps this time."""


def claim(
    conn: Connection,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int = 10,
    tenant: str | None = None,
) -> list[Entry]:
    """Lease up to `limit` due entries that wait for nothing, oldest first (of one tenant).

    On PostgreSQL candidate rows are locked with `FOR UPDATE SKIP LOCKED`, so workers on
    several machines never claim the same entry; SQLite has one writer at a time anyway.
    """
    due = or_(
        and_(outbox.c.state == PENDING, outbox.c.available_at <= now),
        and_(outbox.c.state == IN_FLIGHT, outbox.c.lease_until < now),
    )
    query = select(outbox).where(due).order_by(outbox.c.id).limit(limit * 5)
    if tenant is not None:
        query = query.where(outbox.c.tenant == tenant)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: list[Entry] = []
    for row in conn.execute(query).all():
        entry = _entry(row)
        if len(claimed) == limit or _waits(conn, entry):
            continue
        conn.execute(
            update(outbox)
            .where(outbox.c.id == entry.id)
            .values(
                state=IN_FLIGHT,
                lease_owner=owner,
                lease_until=now + lease,
                attempts=outbox.c.attempts + 1,
                updated_at=now,
            )
        )
        claimed.append(replace(entry, attempts=entry.attempts + 1))
    return claimed


def _waits(conn: Connection, entry: Entry) -> bool:
    """True when an earlier unfinished entry must go first (see the module's docstring)."""
    earlier = conn.execute(
        select(outbox.c.resource_keys, outbox.c.carries_shared).where(
            outbox.c.tenant == entry.tenant,
            or_(outbox.c.patient_key == entry.patient_key, outbox.c.carries_shared.is_(True)),
            outbox.c.id < entry.id,
            outbox.c.state.in_(UNFINISHED),
        )
    ).all()
    mine = set(entry.resource_keys)
    if any(row.carries_shared or _depends(mine, set(row.resource_keys)) for row in earlier):
        return True
    theirs = {key for row in earlier for key in row.resource_keys}
    return bool(theirs) and not theirs.isdisjoint(_referenced(conn, entry))


def _referenced(conn: Connection, entry: Entry) -> set[str]:
    """What the entry's resources refer to, as the store holds them now."""
    mine = set(entry.resource_keys)
    rows = conn.execute(
        select(resources.c.resource_type, resources.c.logical_id, resources.c.content).where(
            keyed(entry.tenant, mine)
        )
    )
    return {key for row in rows if key_of(row) in mine for key in referenced_keys(row.content)}


def _depends(mine: set[str], theirs: set[str]) -> bool:
    return bool(mine & theirs) or any(key.startswith("Patient/") for key in theirs)


def _entry(row: Row[tuple[object, ...]]) -> Entry:
    fields = row._mapping
    return Entry(
        id=int(fields["id"]),
        tenant=str(fields["tenant"]),
        patient_key=str(fields["patient_key"]),
        encounter_key=str(fields["encounter_key"]),
        resource_keys=tuple(fields["resource_keys"]),
        attempts=int(fields["attempts"]),
        created_at=_utc(fields["created_at"]),
    )


def _utc(moment: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its offset.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def settle(
    conn: Connection,
    entry: Entry,
    owner: str,
    state: str,
    now: datetime,
    *,
    status: int | None = None,
    error: str | None = None,
    outcome: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record how a claimed entry ended; False when the lease was lost meanwhile."""
    values: dict[str, object] = {
        "state": PENDING if retry_at is not None else state,
        "lease_owner": None,
        "lease_until": None,
        "last_status": status,
        "last_error": error,
        "outcome": outcome,
        "updated_at": now,
    }
    if retry_at is not None:
        values["available_at"] = retry_at
    done = conn.execute(
        update(outbox)
        .where(outbox.c.id == entry.id, outbox.c.lease_owner == owner)
        .values(**values)
    )
    return done.rowcount == 1


def narrow(conn: Connection, entry_id: int, keys: Sequence[str]) -> None:
    """Leave only `keys` in an entry: the EHR took the others (a partly successful batch)."""
    conn.execute(update(outbox).where(outbox.c.id == entry_id).values(resource_keys=list(keys)))


def record_parked(
    conn: Connection, entry: Entry, actor: str, state: str, now: datetime, reason: str
) -> None:
    """The audit row of an entry just parked as `state` (dead or conflict): the alert an
    operator reads, naming the submission and the error's class (`reason`), no content; and
    the tenant's `submission-failed` subscription events, in the same transaction."""
    conn.execute(
        insert(audit).values(
            at=now,
            tenant=entry.tenant,
            actor=actor,
            action=f"push-{state}",
            object=public_name(conn, entry.id),
            count=len(entry.resource_keys),
            outcome=reason[:32],
        )
    )
    on_parked(conn, entry.tenant, entry.patient_key, entry.resource_keys, now)


def public_name(conn: Connection, entry_id: int) -> str:
    """What a tenant may read about an entry (its audit trail): `Submission/<public id>` of
    the newest submission it carries, never the entry's number, which counts every
    tenant's work."""
    found = conn.execute(
        select(submissions.c.public_id)
        .join(outbox, outbox.c.submission_id == submissions.c.id)
        .where(outbox.c.id == entry_id)
    ).scalar()
    return f"Submission/{found}"


def replay(conn: Connection, ids: Sequence[int], now: datetime) -> int:
    """Put dead or conflicting entries back in the queue; returns how many were."""
    done = conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids), outbox.c.state.in_((DEAD, CONFLICT)))
        .values(state=PENDING, available_at=now, attempts=0, updated_at=now)
    )
    return done.rowcount


@dataclass(frozen=True)
class Waiting:
    """What is left in the outbox at a moment, by why it waits."""

    backing_off: int = 0
    """Pending, not due yet: retried after a backoff or the EHR's Retry-After."""
    leased: int = 0
    """In flight under a lease still running: another run (or worker) has them."""
    held_back: int = 0
    """Due, yet not taken: each waits for an earlier entry it depends on (or a lease ran out)."""
    dead: int = 0
    conflict: int = 0
    next_due: datetime | None = None
    """When the first entry backing off is due again."""


def waiting(conn: Connection, now: datetime, tenant: str | None = None) -> Waiting:
    """The outbox's unfinished entries at `now`, by why they wait (all tenants when None)."""
    later = and_(outbox.c.state == PENDING, outbox.c.available_at > now)
    leased = and_(outbox.c.state == IN_FLIGHT, outbox.c.lease_until >= now)
    kind = case(
        (later, "backing_off"),
        (leased, "leased"),
        (outbox.c.state.in_((PENDING, IN_FLIGHT)), "held_back"),
        else_=outbox.c.state,
    )
    query = select(kind, func.count(), func.min(outbox.c.available_at)).group_by(kind)
    if tenant is not None:
        query = query.where(outbox.c.tenant == tenant)
    rows = conn.execute(query).all()
    found = {name: int(n) for name, n, _ in rows}
    first_due = next((first for name, _, first in rows if name == "backing_off"), None)
    return Waiting(
        backing_off=found.get("backing_off", 0),
        leased=found.get("leased", 0),
        held_back=found.get("held_back", 0),
        dead=found.get(DEAD, 0),
        conflict=found.get(CONFLICT, 0),
        next_due=None if first_due is None else _utc(first_due),
    )


def counts(conn: Connection, tenant: str | None = None) -> dict[str, int]:
    """Entries per state (all tenants when `tenant` is None)."""
    query = select(outbox.c.state, func.count()).group_by(outbox.c.state)
    if tenant is not None:
        query = query.where(outbox.c.tenant == tenant)
    return {state: int(n) for state, n in conn.execute(query).all()}
