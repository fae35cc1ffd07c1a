"""The `jti`s of SMART client assertions the token endpoint accepted: each only once.

`remember_assertion` records (client, jti) until the assertion expires, and answers False
when the pair is already there: a replay. The record lives in the store, so a replay is
refused by every web process and after a restart. Expired records are dropped as new ones
arrive (an expired assertion is refused for its `exp` anyway).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from adapter.store.engine import write_transaction
from adapter.store.schema import smart_assertions

_table = smart_assertions


def remember_assertion(
    engine: Engine, client_id: str, jti: str, expires_at: datetime, now: datetime
) -> bool:
    """Record the assertion `jti` of `client_id`; False when it was already recorded."""
    try:
        with write_transaction(engine) as conn:
            conn.execute(delete(_table).where(_table.c.expires_at < now))
            seen = conn.execute(
                select(_table.c.jti).where(_table.c.client_id == client_id, _table.c.jti == jti)
            ).first()
            if seen is not None:
                return False
            values = {"client_id": client_id, "jti": jti, "expires_at": expires_at}
            conn.execute(insert(_table).values(values))
    except IntegrityError:
        # Two processes took the same assertion at once (PostgreSQL): the other one won.
        return False
    return True
