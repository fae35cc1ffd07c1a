"""The push worker: drain the outbox into the EHR, one transaction Bundle per entry.

Each round claims a few due entries (a lease, in its own short transaction), sends each
one's Bundle outside any database transaction, and settles it in another:

    every entry answered 2xx            -> done; the EHR's ids, versions, ETags recorded
    some entries failed, retryably     -> the succeeded ones are recorded and dropped from
                                          the entry; the rest retried later
    connection error, timeout, 408,
    409, 429, 5xx, malformed answer    -> retried with exponential backoff and jitter,
                                          or after the EHR's Retry-After (never sooner),
                                          until the `RetryLimit`: then a dead letter
    412 after If-Match                 -> conflict: our version and the EHR's both kept
    other 4xx, ambiguous match         -> dead letter, with the EHR's OperationOutcome

While the EHR's Retry-After lasts (the client's `pace`), nothing is claimed: entries wait
in the queue rather than being sent against the EHR's wish. Parking (dead or conflict)
raises one alert per entry: one log line with ids only and an audit row; retries are not
alerts.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson

from adapter.ehr.bundles import BundleResult, EntryResult
from adapter.ehr.client import FetchedResource
from adapter.ehr.pace import Pace
from adapter.errors import EhrBadResponse, EhrConflict, EhrError
from adapter.store import outbox as box
from adapter.store.ehr_versions import EhrCopy, record_ehr_copies
from adapter.store.engine import Connection, Engine, write_transaction
from adapter.sync.push.lineage import record_delivery
from adapter.sync.push.payload import Payload, Stored, build
from mappings.jsontypes import JsonObject

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Ehr(Protocol):
    """What the worker needs of an EHR client (`adapter.ehr.client.FhirClient`)."""

    def send(self, bundle: JsonObject) -> BundleResult: ...

    def read(self, resource_type: str, resource_id: str) -> FetchedResource: ...

    @property
    def pace(self) -> Pace: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits about base * 2**(n-1), at most cap."""

    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before try `attempts + 1`: the EHR's `retry_after` when it asked for a wait
        (already capped by ADAPTER_EHR_RETRY_AFTER_MAX_SECONDS, so not by `cap_seconds`);
        else, a `Retry-After` of 0 or a past date included, the exponential backoff."""
        if retry_after is not None and retry_after > 0:
            return retry_after
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class RetryLimit:
    """When retrying stops: an entry failing retryably becomes a dead letter once it has had
    `max_attempts` attempts AND was queued `max_age` ago. Both, so that neither a burst of
    quick failures in a short outage nor one failure of an old entry gives up on it.
    (A replay starts the attempts again; the age still counts from the first queueing.)"""

    max_attempts: int = 20
    max_age: timedelta = timedelta(hours=72)

    def is_reached(self, entry: box.Entry, now: datetime) -> bool:
        return entry.attempts >= self.max_attempts and now - entry.created_at >= self.max_age


@dataclass
class PushSummary:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0
    conflicts: int = 0
    resources_sent: int = 0


def utc_now() -> datetime:
    return datetime.now(UTC)


class PushWorker:
    """Claims and pushes outbox entries; one instance per thread or process."""

    def __init__(
        self,
        engine: Engine,
        ehr: Ehr,
        *,
        owner: str,
        tenant: str | None = None,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        retry_limit: RetryLimit | None = None,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.engine = engine
        self.ehr = ehr
        self.owner = owner
        self.tenant = tenant
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.retry_limit = retry_limit or RetryLimit()
        self.lease = lease
        self.concurrency = concurrency
        # Enough claimed per round to keep every connection busy for a while.
        self.batch_size = batch_size if batch_size is not None else max(8, 4 * concurrency)

    def run_once(self) -> PushSummary:
        """One round: claim due entries, push them, wait for every answer; in counts."""
        return self._pump(rounds=1)

    def drain(self, progress: Callable[[PushSummary], None] | None = None) -> PushSummary:
        """Push until no entry is due now; for `adapter push` and tests."""
        return self._pump(progress=progress)

    def run(self, stop: threading.Event, idle_seconds: float = 1.0) -> None:
        """Push until `stop` is set, pausing `idle_seconds` when nothing is due."""
        while not stop.is_set():
            try:
                busy = self._pump(stop=stop).claimed > 0
            except Exception:  # a database hiccup must not kill the worker thread
                log.exception("push round failed; retrying after a pause")
                busy = False
            if not busy:
                stop.wait(idle_seconds)

    def _pump(
        self,
        *,
        rounds: int | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[PushSummary], None] | None = None,
    ) -> PushSummary:
        """Claim, send and settle until nothing more is due (or `rounds` claims were made,
        or `stop` is set), then wait for the answers still out.

        Up to `concurrency` Bundles are with the EHR at once, each on a connection of its
        own, and up to `batch_size` entries are claimed ahead. Claims are topped up while
        Bundles are out, so the EHR never waits for a round to end; what is in flight
        counts as unfinished to a claim, so nothing that depends on it is claimed beside
        it (see `adapter.store.outbox`). This thread alone touches the store: it builds each
        Bundle and records each answer while other Bundles are with the EHR, so the store's
        work (and its fsyncs) hides behind the EHR's.
        """
        summary = PushSummary()
        sending: dict[Future[BundleResult], tuple[box.Entry, Payload]] = {}
        claims = 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="push-send") as sender:
            while True:
                room = self.batch_size - len(sending)
                may_claim = (rounds is None or claims < rounds) and not (stop and stop.is_set())
                # While the EHR's Retry-After lasts, entries wait in the queue, unclaimed.
                may_claim = may_claim and self.ehr.pace.remaining() <= 0
                # Top up in chunks (a claim is a write transaction), or when idle.
                if may_claim and (room >= self.concurrency or not sending):
                    claimed = self._claim(room)
                    claims += 1
                    summary.claimed += len(claimed)
                    for entry in claimed:
                        self._submit(sender, sending, entry, summary)
                if not sending:
                    return summary
                answered, _ = wait(sending, return_when=FIRST_COMPLETED)
                for future in answered:
                    self._finish(*sending.pop(future), future, summary)
                if progress is not None:
                    progress(summary)

    def _claim(self, limit: int) -> list[box.Entry]:
        with write_transaction(self.engine) as conn:
            return box.claim(conn, self.owner, self.clock(), self.lease, limit, self.tenant)

    def _submit(
        self,
        sender: ThreadPoolExecutor,
        sending: dict[Future[BundleResult], tuple[box.Entry, Payload]],
        entry: box.Entry,
        summary: PushSummary,
    ) -> None:
        """Build the entry's Bundle and hand it to a sending thread (or settle an empty one)."""
        payload = self._prepare(entry)
        if not payload.items:
            self._settle(entry, box.DONE)
            summary.done += 1
            return
        summary.resources_sent += len(payload.items)
        sending[sender.submit(self.ehr.send, payload.bundle)] = (entry, payload)

    # ---- one entry ---------------------------------------------------------------------

    def _prepare(self, entry: box.Entry) -> Payload:
        """The Bundle for an entry, from the store's current content."""
        with self.engine.connect() as conn:
            payload = build(conn, entry.tenant, entry.resource_keys)
            conn.rollback()
        return payload

    def _finish(
        self,
        entry: box.Entry,
        payload: Payload,
        sending: Future[BundleResult],
        summary: PushSummary,
    ) -> None:
        """Wait for the EHR's answer to an entry and settle the entry by it."""
        try:
            result = sending.result()
        except EhrConflict as exc:
            self._park_conflict(entry, payload, exc, summary)
            return
        except EhrError as exc:
            self._failed(entry, exc, summary)
            return
        self._record(entry, payload, result, summary)

    def _record(
        self, entry: box.Entry, payload: Payload, result: BundleResult, summary: PushSummary
    ) -> None:
        now = self.clock()
        failed = [
            (item, answer)
            for item, answer in zip(payload.items, result.entries, strict=True)
            if not answer.is_success
        ]
        delivered = [
            (item, answer)
            for item, answer in zip(payload.items, result.entries, strict=True)
            if answer.is_success
        ]
        # One transaction (one commit, one fsync): what the EHR answered, the lineage, and
        # for a full success the entry's end.
        with write_transaction(self.engine) as conn:
            _remember(conn, entry.tenant, delivered)
            if delivered:
                record_delivery(conn, entry.tenant, entry.id, delivered, self.owner, now)
            if failed:
                box.narrow(conn, entry.id, [item.key for item, _ in failed])
            else:
                box.settle(conn, entry, self.owner, box.DONE, now)
        if not failed:
            summary.done += 1
            return
        first_error = failed[0][1].error
        assert first_error is not None
        permanent = [a for _, a in failed if not a.is_retryable]
        if permanent:
            error = permanent[0].error
            assert error is not None
            if isinstance(error, EhrConflict):
                self._park_conflict(entry, payload, error, summary)
            else:
                self._park(entry, box.DEAD, error, summary, now, status=permanent[0].status)
        else:
            self._failed(entry, first_error, summary, status=failed[0][1].status or None)

    def _failed(
        self, entry: box.Entry, exc: EhrError, summary: PushSummary, status: int | None = None
    ) -> None:
        status = status if status is not None else exc.http_status
        now = self.clock()
        retryable = exc.retryable or _malformed(exc)
        if retryable and not self.retry_limit.is_reached(entry, now):
            delay = self.backoff.delay(entry.attempts, exc.retry_after)
            retry_at = now + timedelta(seconds=delay)
            self._settle(entry, box.PENDING, error=exc, status=status, retry_at=retry_at)
            summary.retried += 1
            log.info("outbox %d: retry in %.1fs after %s", entry.id, delay, type(exc).__name__)
            return
        self._park(entry, box.DEAD, exc, summary, now, status=status, gave_up=retryable)

    def _park_conflict(
        self, entry: box.Entry, payload: Payload, exc: EhrError, summary: PushSummary
    ) -> None:
        theirs: JsonObject = {}
        for item in payload.items:
            if item.ehr_id is None or item.deleted:
                continue
            try:
                theirs[item.key] = self.ehr.read(item.identity.resource_type, item.ehr_id).resource
            except EhrError:
                continue  # what we could not fetch now, an operator can look up later
        outcome: JsonObject = {"ehr_versions": theirs, "operation_outcome": exc.outcome}
        self._park(entry, box.CONFLICT, exc, summary, self.clock(), outcome=outcome, status=412)

    def _park(
        self,
        entry: box.Entry,
        state: str,
        exc: EhrError,
        summary: PushSummary,
        now: datetime,
        *,
        status: int | None = None,
        outcome: JsonObject | None = None,
        gave_up: bool = False,
    ) -> None:
        """Park the entry as `state`; `gave_up`: a retryable failure past the `RetryLimit`."""
        kept = outcome if outcome is not None else {"operation_outcome": exc.outcome}
        error, audited = f"{type(exc).__name__}: {exc}", type(exc).__name__
        if gave_up:
            kept = {**kept, "error": exc.code, "gave_up_after_attempts": entry.attempts}
            since = f"{entry.created_at:%Y-%m-%d %H:%M} UTC"
            error = f"gave up after {entry.attempts} attempts since {since}; last: {error}"
            audited = f"{audited} after retries"
        with write_transaction(self.engine) as conn:
            settled = box.settle(
                conn,
                entry,
                self.owner,
                state,
                now,
                status=status,
                error=error,
                outcome=orjson.dumps(kept).decode(),
            )
            if settled:
                box.record_parked(conn, entry, self.owner, state, now, audited)
        if settled:
            if state == box.DEAD:
                summary.dead += 1
            else:
                summary.conflicts += 1
            log.warning(
                "ALERT outbox %d parked as %s (%s, HTTP %s%s); see `adapter outbox`",
                entry.id,
                state,
                type(exc).__name__,
                status,
                f", gave up after {entry.attempts} attempts" if gave_up else "",
            )

    def _settle(
        self,
        entry: box.Entry,
        state: str,
        *,
        error: EhrError | None = None,
        status: int | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        with write_transaction(self.engine) as conn:
            box.settle(
                conn,
                entry,
                self.owner,
                state,
                self.clock(),
                status=status,
                error=None if error is None else f"{type(error).__name__}: {error}",
                retry_at=retry_at,
            )


def _malformed(exc: EhrError) -> bool:
    # An unreadable answer may come from a proxy in between: worth another try.
    return isinstance(exc, EhrBadResponse)


def _remember(
    conn: Connection, tenant: str, delivered: Sequence[tuple[Stored, EntryResult]]
) -> None:
    """Record what the EHR calls our resources now (id, version, ETag); forget on delete."""
    copies = [
        EhrCopy(
            item.identity.resource_type,
            item.identity.id,
            None if item.deleted else answer.resource_id or item.ehr_id,
            None if item.deleted else answer.version_id,
            None if item.deleted else answer.etag,
        )
        for item, answer in delivered
    ]
    record_ehr_copies(conn, tenant, copies)
