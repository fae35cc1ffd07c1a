"""The service's store upkeep, in one background thread: when it starts and every
`UPKEEP_SECONDS` after, the audit trail's retention (`adapter.store.audit_upkeep`) and the
sent subscription notifications' (`adapter.store.subscription_upkeep`).

Each job fails on its own (a warning; the other still runs, the next round tries again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from adapter.store.audit_upkeep import AuditUpkeep, keep_audit
from adapter.store.subscription_upkeep import prune_sent

log = logging.getLogger(__name__)

UPKEEP_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Retention:
    """Days each kind of row is kept (0: for ever)."""

    audit_days: int
    subscription_days: int


def utc_now() -> datetime:
    return datetime.now(UTC)


def upkeep_once(engine: Engine, now: datetime, retention: Retention) -> None:
    """One round: the audit trail, then the sent notifications."""
    try:
        done = keep_audit(engine, now, retention.audit_days)
    except SQLAlchemyError as exc:
        log.warning("audit upkeep failed (%s); next try in 6 h", type(exc).__name__)
    else:
        if done != AuditUpkeep():
            log.info(
                "audit upkeep: %d month partitions added, %d dropped, %d rows deleted",
                done.partitions_added,
                done.partitions_dropped,
                done.rows_deleted,
            )
    try:
        pruned = prune_sent(engine, now, retention.subscription_days)
    except SQLAlchemyError as exc:
        log.warning("subscription upkeep failed (%s); next try in 6 h", type(exc).__name__)
    else:
        if pruned:
            log.info("subscription upkeep: %d sent notifications deleted", pruned)


def upkeep_in_background(
    engine: Engine,
    retention: Retention,
    stop: threading.Event,
    clock: Callable[[], datetime] = utc_now,
) -> threading.Thread:
    """Run `upkeep_once` now and every `UPKEEP_SECONDS` until `stop` is set."""

    def run() -> None:
        while not stop.is_set():
            upkeep_once(engine, clock(), retention)
            stop.wait(UPKEEP_SECONDS)

    thread = threading.Thread(target=run, name="adapter-store-upkeep", daemon=True)
    thread.start()
    return thread
