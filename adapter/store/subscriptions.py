"""A tenant's FHIR Subscriptions: create, read, list, update, delete, and their $status.

Every function takes the caller's tenant and never reads or changes another's rows. A
new subscription (or one set back to `requested`) gets a handshake queued in the same
transaction; the deliverer (`adapter.store.subscription_queue`) sends it and makes the
subscription `active`. Setting `off` stops new events; deleting drops its queue.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from dataclasses import replace as changed
from datetime import UTC, datetime

from sqlalchemy import Connection, Row, case, delete, func, insert, select, update

from adapter.store.schema import subscription_notifications as notes
from adapter.store.schema import subscriptions
from adapter.store.subscription_topics import Filter

REQUESTED, ACTIVE, ERROR, OFF = "requested", "active", "error", "off"
STATUSES = (REQUESTED, ACTIVE, ERROR, OFF)
HANDSHAKE, HEARTBEAT, EVENT = "handshake", "heartbeat", "event-notification"


@dataclass(frozen=True)
class Spec:
    """What a caller asks for: the parsed Subscription (`resource`: its JSON as stored)."""

    topic: str
    status: str
    filters: tuple[Filter, ...]
    endpoint: str
    content: str
    headers: tuple[str, ...]
    heartbeat_seconds: int | None
    timeout_seconds: int
    max_count: int
    resource: str


@dataclass(frozen=True)
class Stored:
    pk: int
    tenant: str
    public_id: str
    version: int
    fhir_base: str
    spec: Spec
    events_count: int
    failures: int
    last_error: str | None
    last_sent_at: datetime | None
    """When a notification last reached the receiver (None: never)."""
    updated_at: datetime

    @property
    def status(self) -> str:
        return self.spec.status


def create(conn: Connection, tenant: str, spec: Spec, fhir_base: str, now: datetime) -> Stored:
    """Store a new subscription as `requested`, with its handshake queued; `fhir_base`: the
    /fhir base it was made through, which its notifications' references name."""
    public_id = secrets.token_hex(16)
    pk = conn.execute(
        insert(subscriptions)
        .values(
            tenant=tenant,
            public_id=public_id,
            version=1,
            fhir_base=fhir_base,
            events_count=0,
            failures=0,
            next_attempt_at=now,
            created_at=now,
            **_spec_values(spec, REQUESTED, now),
        )
        .returning(subscriptions.c.id)
    ).scalar_one()
    _queue_handshake(conn, pk, now)
    found = read(conn, tenant, public_id)
    assert found is not None
    return found


def read(conn: Connection, tenant: str, public_id: str) -> Stored | None:
    row = conn.execute(
        select(subscriptions).where(
            subscriptions.c.tenant == tenant, subscriptions.c.public_id == public_id
        )
    ).first()
    return None if row is None else _stored(row)


def read_by_pk(conn: Connection, pk: int) -> Stored | None:
    row = conn.execute(select(subscriptions).where(subscriptions.c.id == pk)).first()
    return None if row is None else _stored(row)


def listed(conn: Connection, tenant: str, status: str | None = None) -> list[Stored]:
    query = select(subscriptions).where(subscriptions.c.tenant == tenant)
    if status is not None:
        query = query.where(subscriptions.c.status == status)
    return [_stored(row) for row in conn.execute(query.order_by(subscriptions.c.id))]


def of_tenants(conn: Connection, tenant: str | None) -> list[Stored]:
    """The subscriptions of `tenant` (of every tenant when None) for the operator's console:
    those in `error` first, then by number."""
    query = select(subscriptions)
    if tenant is not None:
        query = query.where(subscriptions.c.tenant == tenant)
    in_error_first = case((subscriptions.c.status == ERROR, 0), else_=1)
    return [
        _stored(row) for row in conn.execute(query.order_by(in_error_first, subscriptions.c.id))
    ]


def count_in_error(conn: Connection, tenant: str | None) -> int:
    """How many subscriptions of `tenant` (of every tenant when None) are in `error`."""
    query = select(func.count()).where(subscriptions.c.status == ERROR)
    if tenant is not None:
        query = query.where(subscriptions.c.tenant == tenant)
    return int(conn.execute(query).scalar_one())


def restart(conn: Connection, current: Stored, now: datetime) -> Stored:
    """Start a subscription again as a client's update to status `requested` does: a
    handshake queued, a clean failure count; once the handshake is answered it is `active`
    and its undelivered notifications go out, oldest first."""
    return replace(conn, current, changed(current.spec, status=REQUESTED), now)


def replace(conn: Connection, current: Stored, spec: Spec, now: datetime) -> Stored:
    """Update a subscription. Asked `requested` (or a new endpoint while not off), it starts
    again with a handshake and a clean failure count; otherwise its status is kept unless the
    caller turns it `off`. Its event numbers carry on."""
    restart = spec.status == REQUESTED or (
        spec.endpoint != current.spec.endpoint and spec.status != OFF
    )
    status = REQUESTED if restart else (OFF if spec.status == OFF else current.status)
    if current.status == OFF and spec.status == ACTIVE:
        status, restart = REQUESTED, True
    values = _spec_values(spec, status, now)
    if restart:
        values |= {"failures": 0, "last_error": None, "next_attempt_at": now}
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == current.pk)
        .values(version=subscriptions.c.version + 1, **values)
    )
    if restart:
        _queue_handshake(conn, current.pk, now)
    found = read(conn, current.tenant, current.public_id)
    assert found is not None
    return found


def remove(conn: Connection, tenant: str, public_id: str) -> bool:
    """Delete a subscription and its queue; False when the tenant has none by that id."""
    pk = conn.execute(
        select(subscriptions.c.id).where(
            subscriptions.c.tenant == tenant, subscriptions.c.public_id == public_id
        )
    ).scalar()
    if pk is None:
        return False
    conn.execute(delete(notes).where(notes.c.subscription_id == pk))
    conn.execute(delete(subscriptions).where(subscriptions.c.id == pk))
    return True


def undelivered(conn: Connection, pk: int) -> int:
    """How many of a subscription's notifications wait to be sent."""
    return int(
        conn.execute(
            select(func.count()).where(notes.c.subscription_id == pk, notes.c.sent_at.is_(None))
        ).scalar_one()
    )


def _queue_handshake(conn: Connection, pk: int, now: datetime) -> None:
    conn.execute(insert(notes).values(subscription_id=pk, kind=HANDSHAKE, occurred_at=now))


def _spec_values(spec: Spec, status: str, now: datetime) -> dict[str, object]:
    return {
        "topic": spec.topic,
        "status": status,
        "resource": spec.resource,
        "filters": [[f.resource_type, f.patient] for f in spec.filters],
        "endpoint": spec.endpoint,
        "content": spec.content,
        "headers": list(spec.headers),
        "heartbeat_seconds": spec.heartbeat_seconds,
        "timeout_seconds": spec.timeout_seconds,
        "max_count": spec.max_count,
        "updated_at": now,
    }


def _stored(row: Row[tuple[object, ...]]) -> Stored:
    f = row._mapping
    spec = Spec(
        topic=str(f["topic"]),
        status=str(f["status"]),
        filters=tuple(Filter(kind, patient) for kind, patient in f["filters"]),
        endpoint=str(f["endpoint"]),
        content=str(f["content"]),
        headers=tuple(f["headers"]),
        heartbeat_seconds=f["heartbeat_seconds"],
        timeout_seconds=int(f["timeout_seconds"]),
        max_count=int(f["max_count"]),
        resource=str(f["resource"]),
    )
    return Stored(
        pk=int(f["id"]),
        tenant=str(f["tenant"]),
        public_id=str(f["public_id"]),
        version=int(f["version"]),
        fhir_base=str(f["fhir_base"]),
        spec=spec,
        events_count=int(f["events_count"]),
        failures=int(f["failures"]),
        last_error=f["last_error"],
        last_sent_at=None if f["last_sent_at"] is None else utc(f["last_sent_at"]),
        updated_at=utc(f["updated_at"]),
    )


def utc(moment: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its offset.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
