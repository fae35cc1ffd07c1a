"""The `idempotency_keys` table: one reservation, then one stored answer, per (tenant, key).

    begin()    one transaction: purge expired keys, then look up (tenant, key):
               none                      -> reserve it (status NULL)         -> Reserved
               stored with another body  -> IdempotencyKeyReused (422)
               answered                  -> Stored(status, body)
               reserved, request running -> IdempotencyKeyBusy (409, retry)
               reserved STALE_AFTER ago  -> its process died: take it over   -> Reserved
    finish()   store the answer on the reservation
    release()  drop the reservation of a request that failed, so a retry runs again

The unique (tenant, key) decides which of two concurrent first uses goes on (see
`adapter.api.clinic.idempotency` for how the clinic API uses this).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapter.errors import IdempotencyKeyBusy, IdempotencyKeyReused
from adapter.store.engine import write_transaction
from adapter.store.schema import idempotency_keys as keys

# A request holds its reservation for milliseconds; a minute means its process is gone.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Reserved:
    """The key is ours until `finish` or `release`."""

    row_id: int


@dataclass(frozen=True)
class Stored:
    """The answer kept for the key's first use: its HTTP status and JSON body."""

    status: int
    body: bytes


def begin(
    engine: Engine, tenant: str, key: str, body_sha256: str, now: datetime, ttl: timedelta
) -> Stored | Reserved:
    try:
        with write_transaction(engine) as conn:
            return _begin(conn, tenant, key, body_sha256, now, ttl)
    except IntegrityError:
        # A concurrent first use reserved the key between our look-up and our insert
        # (PostgreSQL; SQLite lets one writer in at a time): look again and see theirs.
        with write_transaction(engine) as conn:
            return _begin(conn, tenant, key, body_sha256, now, ttl)


def _begin(
    conn: Connection, tenant: str, key: str, body_sha256: str, now: datetime, ttl: timedelta
) -> Stored | Reserved:
    conn.execute(delete(keys).where(keys.c.created_at < now - ttl))
    row = conn.execute(
        select(
            keys.c.id,
            keys.c.body_sha256,
            keys.c.status,
            keys.c.response_body,
            (keys.c.created_at < now - STALE_AFTER).label("is_stale"),
        ).where(keys.c.tenant == tenant, keys.c.key == key)
    ).first()
    if row is None:
        values = {"tenant": tenant, "key": key, "body_sha256": body_sha256, "created_at": now}
        return Reserved(conn.execute(insert(keys).values(values).returning(keys.c.id)).scalar_one())
    if row.body_sha256 != body_sha256:
        raise IdempotencyKeyReused("this Idempotency-Key was first used with a different body")
    if row.status is not None:
        return Stored(int(row.status), str(row.response_body).encode())
    if not row.is_stale:
        raise IdempotencyKeyBusy("a request with this Idempotency-Key is still being processed")
    conn.execute(update(keys).where(keys.c.id == row.id).values(created_at=now))
    return Reserved(int(row.id))


def finish(engine: Engine, reserved: Reserved, status: int, body: bytes) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(keys)
            .where(keys.c.id == reserved.row_id)
            .values(status=status, response_body=body.decode())
        )


def release(engine: Engine, reserved: Reserved) -> None:
    with write_transaction(engine) as conn:
        conn.execute(delete(keys).where(keys.c.id == reserved.row_id, keys.c.status.is_(None)))
