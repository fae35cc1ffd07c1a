"""`Idempotency-Key` on the clinic API: a retried POST gets its first answer again.

    begin()    one transaction: purge expired keys, then look up (tenant, key):
               none                      -> reserve it (status NULL)         -> Reserved
               stored with another body  -> IdempotencyKeyReused (422)
               answered                  -> Replay(status, body)
               reserved, request running -> IdempotencyKeyBusy (409, retry)
               reserved STALE_AFTER ago  -> its process died: take it over   -> Reserved
    finish()   store the answer on the reservation
    release()  drop the reservation of a request that failed, so a retry runs again

Only answers are stored, never errors: a refused document can be corrected and sent again
under the same key. The accept runs in `ingest_encounter`'s own transaction, which this
cannot join, so the reservation comes first and the unique (tenant, key) decides which of
two concurrent first uses goes on. A process dying between the accept and `finish()`
leaves a reservation that is taken over after STALE_AFTER; the retry then accepts the
same document again, which changes nothing (accept is versioned by content), so it gets
200 with every resource `unchanged` instead of the first answer's 201.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from adapter.errors import IdempotencyKeyBusy, IdempotencyKeyReused, InvalidIdempotencyKey
from adapter.store.engine import write_transaction
from adapter.store.schema import idempotency_keys as keys

# A request holds its reservation for milliseconds; a minute means its process is gone.
STALE_AFTER = timedelta(seconds=60)
MAX_KEY_CHARS = 255
_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer worth replaying: its status and JSON body."""

    status: int
    body: bytes
    is_replay: bool = False


@dataclass(frozen=True)
class Reserved:
    row_id: int


def parse_key(header: str | None) -> str | None:
    """The key of an `Idempotency-Key` header (a bare token or a quoted string), if any."""
    if header is None:
        return None
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not (len(key) <= MAX_KEY_CHARS and _KEY.fullmatch(key)):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable ASCII characters"
        )
    return key


def run_once(
    engine: Engine,
    tenant: str,
    key: str,
    body: bytes,
    now: datetime,
    ttl: timedelta,
    work: Callable[[], Answer],
) -> Answer:
    """`work()`'s answer, or the one stored for (tenant, key) when this is a retry."""
    step = begin(engine, tenant, key, hashlib.sha256(body).hexdigest(), now, ttl)
    if isinstance(step, Answer):
        return step
    try:
        answer = work()
    except BaseException:
        with suppress(SQLAlchemyError):  # else the reservation goes stale and is taken over
            release(engine, step)
        raise
    finish(engine, step, answer)
    return answer


def begin(
    engine: Engine, tenant: str, key: str, body_sha256: str, now: datetime, ttl: timedelta
) -> Answer | Reserved:
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
) -> Answer | Reserved:
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
        return Answer(int(row.status), str(row.response_body).encode(), is_replay=True)
    if not row.is_stale:
        raise IdempotencyKeyBusy("a request with this Idempotency-Key is still being processed")
    conn.execute(update(keys).where(keys.c.id == row.id).values(created_at=now))
    return Reserved(int(row.id))


def finish(engine: Engine, reserved: Reserved, answer: Answer) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            update(keys)
            .where(keys.c.id == reserved.row_id)
            .values(status=answer.status, response_body=answer.body.decode())
        )


def release(engine: Engine, reserved: Reserved) -> None:
    with write_transaction(engine) as conn:
        conn.execute(delete(keys).where(keys.c.id == reserved.row_id, keys.c.status.is_(None)))
