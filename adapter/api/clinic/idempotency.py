"""`Idempotency-Key` on the clinic API: a retried POST gets its first answer again.

`run_once` reserves the key in the store (`adapter.store.idempotency`, which says what
each stored state answers), runs the work, then stores its answer; a retry gets the stored
answer back, a concurrent one 409, a reuse with another body 422.

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

from adapter.errors import InvalidIdempotencyKey
from adapter.store import idempotency as keys
from adapter.store.engine import Engine, StoreError

MAX_KEY_CHARS = 255
_KEY = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer worth replaying: its status and JSON body."""

    status: int
    body: bytes
    is_replay: bool = False


def parse_key(header: str | None) -> str | None:
    """The key of an `Idempotency-Key` header (a bare token or a quoted string), if any."""
    if header is None:
        return None
    key = header.strip()
    if key.startswith('"'):  # a quoted string (as RFC 8941 writes one): quoted whole
        key = key[1:-1] if len(key) >= 2 and key.endswith('"') else ""
    if not (len(key) <= MAX_KEY_CHARS and _KEY.fullmatch(key)):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1-{MAX_KEY_CHARS} printable ASCII characters, "
            "bare or in double quotes"
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
    step = keys.begin(engine, tenant, key, hashlib.sha256(body).hexdigest(), now, ttl)
    if isinstance(step, keys.Stored):
        return Answer(step.status, step.body, is_replay=True)
    try:
        answer = work()
    except BaseException:
        with suppress(StoreError):  # else the reservation goes stale and is taken over
            keys.release(engine, step)
        raise
    keys.finish(engine, step, answer.status, answer.body)
    return answer
