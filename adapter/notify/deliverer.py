"""The deliverer: drains the subscriptions' queue to their receivers, in the worker process.

It claims subscriptions with notifications due (a lease, in a short transaction), sends
each one's next Bundle on a thread of its own, outside any transaction, and settles the
answers as they come (those that came together in one transaction), claiming more as
threads free up:

    2xx                          -> sent; a handshake makes the subscription active
    3xx, 4xx, 5xx, timeout,
    refused endpoint, no answer  -> retried after an exponential backoff, or after the
                                    receiver's Retry-After (never sooner; both capped at
                                    ADAPTER_SUBSCRIPTION_RETRY_MAX_SECONDS), until
                                    ADAPTER_SUBSCRIPTION_MAX_FAILURES in a row: then the
                                    subscription goes to `error`, with an audit row
                                    (`subscription-error`) and an ALERT log line

Killing the process mid-send loses nothing: the notifications stay unsent in the store and
the lease runs out; the next deliverer sends them again.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from adapter.notify.bundles import FULL_RESOURCE, notification
from adapter.notify.sender import Outcome, Sender
from adapter.store import subscription_queue as queue
from adapter.store.engine import Engine, write_transaction
from adapter.store.subscriptions import HANDSHAKE, HEARTBEAT

log = logging.getLogger(__name__)
# How often heartbeats that fell due are looked for (a heartbeat period is whole seconds).
HEARTBEAT_CHECK = timedelta(seconds=1)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """How hard the deliverer tries: each send's timeout, the failures before `error`, and
    the backoff between tries (base * 2**(failures-1) with jitter, at most `max_wait`)."""

    timeout_seconds: float = 10.0
    max_failures: int = 10
    base_seconds: float = 1.0
    max_wait_seconds: float = 600.0

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_wait_seconds)
        ceiling = min(self.max_wait_seconds, self.base_seconds * 2 ** max(failures - 1, 0))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class Deliverer:
    """Claims and delivers subscription notifications; one instance per process."""

    def __init__(
        self,
        engine: Engine,
        sender: Sender,
        *,
        owner: str,
        policy: Policy | None = None,
        concurrency: int = 4,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.owner = owner
        self.policy = policy or Policy()
        self.concurrency = concurrency
        self.clock = clock
        self.rng = random.Random()
        # Longer than the slowest send, so a live deliverer never loses its lease.
        self.lease = timedelta(seconds=self.policy.timeout_seconds * 3 + 5)
        self._heartbeats_due = datetime.min.replace(tzinfo=UTC)

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        """Deliver until `stop` is set. Up to `concurrency` subscriptions are with their
        receivers at once; as each answers it is settled and another claimed, so a slow
        or unreachable receiver holds up no other subscription."""
        sending: dict[Future[Outcome], queue.Claimed] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="notify") as pool:
            while not stop.is_set():
                try:
                    for claimed in self._claim(self.concurrency - len(sending)):
                        sending[pool.submit(self._deliver, claimed)] = claimed
                    if not sending:
                        stop.wait(idle_seconds)
                        continue
                    answered, _ = wait(sending, idle_seconds, FIRST_COMPLETED)
                    done = [(sending.pop(f), _outcome(f)) for f in answered]
                    # The next claims ride in the settling's transaction: on SQLite each
                    # write transaction is a commit the push's own writes queue behind.
                    for claimed in self._settle(done, room=self.concurrency - len(sending)):
                        sending[pool.submit(self._deliver, claimed)] = claimed
                except Exception:  # a database hiccup must not end delivery
                    log.exception("subscription delivery failed; retrying after a pause")
                    stop.wait(idle_seconds)
            if sending:  # stopping: record what the receivers answered meanwhile
                answered, _ = wait(sending, self.policy.timeout_seconds)
                self._settle([(sending[f], _outcome(f)) for f in answered])

    def run_once(self) -> int:
        """One round: claim, send, wait for every answer, settle; how many subscriptions."""
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="notify") as pool:
            claimed = self._claim(2 * self.concurrency)
            futures = [pool.submit(self._deliver, c) for c in claimed]
            self._settle([(c, _outcome(f)) for c, f in zip(claimed, futures, strict=True)])
        return len(claimed)

    def _claim(self, room: int) -> list[queue.Claimed]:
        """Lease up to `room` subscriptions with something to send (heartbeats queued first)."""
        if room <= 0:
            return []
        now = self.clock()
        # Reads first: an idle deliverer never takes the store's write lock (SQLite's is one).
        if now >= self._heartbeats_due:
            self._heartbeats_due = now + HEARTBEAT_CHECK
            with self.engine.connect() as conn:
                silent = queue.due_heartbeats(conn, now)
                conn.rollback()
            if silent:
                with write_transaction(self.engine) as conn:
                    queue.queue_heartbeats(conn, silent, now)
        with self.engine.connect() as conn:
            due = queue.has_due(conn, now)
            conn.rollback()
        if not due:
            return []
        with write_transaction(self.engine) as conn:
            return queue.claim(conn, self.owner, now, self.lease, room)

    def _deliver(self, claimed: queue.Claimed) -> Outcome:
        sub, notes = claimed.subscription, claimed.notes
        kind = notes[0].kind if notes[0].kind in (HANDSHAKE, HEARTBEAT) else "event-notification"
        contents: dict[int, str | None] = {}
        if sub.spec.content == FULL_RESOURCE:  # id-only and empty carry no resource: no read
            with self.engine.connect() as conn:
                contents = queue.focus_contents(conn, sub.tenant, notes)
                conn.rollback()
        bundle = notification(sub.fhir_base, sub, kind, notes, contents, self.clock())
        timeout = min(float(sub.spec.timeout_seconds), self.policy.timeout_seconds)
        return self.sender.post(sub.spec.endpoint, sub.spec.headers, orjson.dumps(bundle), timeout)

    def _settle(
        self, answered: list[tuple[queue.Claimed, Outcome]], room: int = 0
    ) -> list[queue.Claimed]:
        """Record the outcomes that came in together in ONE transaction (one commit, one
        fsync): on SQLite the write lock is shared with every clinic's accept. In the same
        transaction, lease up to `room` subscriptions with notifications due (a settled one
        with more to send among them): what to send next."""
        if not answered:
            return []
        now = self.clock()
        given_up = []
        # In id order, as event numbering locks them: two transactions never wait on each
        # other's subscription rows (a deadlock on PostgreSQL, which lost the whole batch's
        # settling, its subscriptions then waiting out their leases).
        answered = sorted(answered, key=lambda pair: pair[0].subscription.pk)
        with write_transaction(self.engine) as conn:
            for claimed, outcome in answered:
                sub = claimed.subscription
                if outcome.ok:
                    queue.settle_sent(conn, sub, self.owner, claimed.notes, now)
                    continue
                failures = sub.failures + 1
                give_up = failures >= self.policy.max_failures
                wait = self.policy.delay(failures, outcome.retry_after, self.rng)
                retry_at = now + timedelta(seconds=wait)
                settled = queue.settle_failed(
                    conn,
                    sub,
                    self.owner,
                    now,
                    error=outcome.error,
                    retry_at=retry_at,
                    give_up=give_up,
                )
                if settled and give_up:
                    given_up.append((sub, failures, outcome))
                elif settled:
                    log.info(
                        "subscription %s: retry in %.1fs (%s)", sub.public_id, wait, outcome.error
                    )
            leased = queue.claim(conn, self.owner, now, self.lease, room) if room > 0 else []
        for sub, failures, outcome in given_up:
            log.warning(
                "ALERT subscription %s of tenant %s in error after %d failed deliveries (%s)",
                sub.public_id,
                sub.tenant,
                failures,
                outcome.error.split(":", 1)[0],
            )
        return leased


def _outcome(sent: Future[Outcome]) -> Outcome:
    """A send's outcome; one that raised (the store unreadable, say) is a failed delivery."""
    try:
        return sent.result()
    except Exception as exc:  # noqa: BLE001 - any failure is retried like a refusal
        return Outcome(False, error=f"DeliveryFailed: {type(exc).__name__}")
