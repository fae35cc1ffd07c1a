"""Incremental pull from the EHR: what changed there since last time, page by page, safely.

Work is split in channels, one per resource type and way of asking (`Patient` twice: by the
EHR ids we learned, and by our MRN identifier for the patients whose id we have not). A
channel's searches are scoped to subjects we know: our patients (by the EHR's id), or for
the types no patient owns, the EHR ids of the resources we hold. Subjects are taken in
chunks (several ids per search, comma-separated), in the order the store first saw them.

Each channel keeps its state in `sync_state` (`pull/<channel>`), committed with every page:

    cursor  the EHR's clock when the last complete run began (a search Bundle's
            `meta.lastUpdated`, never ours): every change before it is in the store
    upto    the newest subject the cursor covers; newer subjects are read in full once
    run     the run under way: its start on the EHR's clock (`until`), its newest subject
            (`top`), the last subject done (`done`), and within the next chunk the
            `_lastUpdated` of the last committed page (`after`)

A search asks `_lastUpdated=ge<cursor - overlap>` sorted by `_lastUpdated`: the overlap
re-reads changes a slow EHR transaction committed late, and re-read versions are
recognised by `versionId` (adapter.sync.pull.merge). After a crash the run resumes at the
chunk it was in, from `after`: nothing skipped (`ge`), nothing applied twice (versionId).
A server that does not sort as asked only loses the `after` shortcut (the chunk is read
again from its start), never a change.

A page that changes a patient's medication list screens it again for interactions, in the
same transaction (adapter.sync.pull.medication_screen).

Deletions never show in a search: where the EHR's CapabilityStatement offers a type's
`_history`, a second channel per type reads it since its own cursor, and tombstones our
copies of what was deleted (only when the deletion is the resource's newest version).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapter.ehr.capability import Capabilities
from adapter.ehr.client import Page
from adapter.ehr.http import Params
from adapter.errors import EhrBadResponse, EhrError, PullBusy, PullStopped
from adapter.store.engine import Connection, Engine, write_transaction
from adapter.store.pull_scope import tenants
from adapter.store.pull_state import drop_state, load_state, oldest_ehr_version, save_state
from adapter.sync.pull.ehr_view import EhrRef, parse_reference
from adapter.sync.pull.medication_screen import screen_patients
from adapter.sync.pull.merge import EhrVersion, Merger, Outcome, version_of
from adapter.sync.pull.prefetch import Prefetch
from adapter.sync.pull.scope import Channel, channels
from adapter.sync.pull.state import ChannelState, Run, format_instant, instant
from adapter.sync.push.worker import Backoff
from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LEASE_NAME = "pull/lease"
# Pages fetched ahead of the merge (see adapter.sync.pull.prefetch).
PREFETCH_PAGES = 4
# How far before our own first record a first `_history` read starts, beside the overlap:
# the EHR's clock may be behind ours (NTP keeps two servers well within this).
HISTORY_MARGIN = timedelta(seconds=60)


class PullEhr(Protocol):
    """What the puller needs of an EHR client (`adapter.ehr.client.FhirClient`)."""

    base_url: str

    def capabilities(self) -> Capabilities: ...

    def search_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]: ...

    def history_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]: ...


@dataclass(frozen=True)
class PullOptions:
    page_size: int = 100
    """`_count` asked for; the server may answer with other page sizes."""
    subjects_per_search: int = 50
    overlap: timedelta = timedelta(seconds=60)
    max_pages: int = 1000
    """Pages one search may take before it is stopped (a server paging in circles)."""
    batch_versions: int = 500
    """Versions merged in one transaction at most, when pages arrive faster than merged."""
    attempts: int = 3
    """Tries per channel and pull on retryable EHR errors, with backoff in between."""
    deletions: bool = True
    """Read `_history` for deletions where the EHR offers it."""
    lease: timedelta = timedelta(minutes=10)


@dataclass
class PullSummary:
    counts: Counter[Outcome] = field(default_factory=Counter)
    pages: int = 0
    channels: int = 0
    failed: list[str] = field(default_factory=list)
    """Channels given up for this pull, with the error's class (no ids, no URLs)."""

    @property
    def received(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        c = self.counts
        return (
            f"{self.received} versions read in {self.pages} pages over {self.channels} "
            f"channels: {c[Outcome.IMPORTED]} imported, {c[Outcome.UPDATED]} updated, "
            f"{c[Outcome.DELETED]} deleted, {c[Outcome.CONFLICT]} conflicts, "
            f"{c[Outcome.SEEN]} already held, {c[Outcome.IGNORED]} ignored; "
            f"{len(self.failed)} channels failed"
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Puller:
    """Pulls one tenant's (or every tenant's) changes from one EHR."""

    def __init__(
        self,
        engine: Engine,
        ehr: PullEhr,
        *,
        owner: str,
        options: PullOptions | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        progress: Callable[[PullSummary], None] | None = None,
    ) -> None:
        self.engine = engine
        self.ehr = ehr
        self.owner = owner
        self.options = options or PullOptions()
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff or Backoff(base_seconds=1.0, cap_seconds=60.0)
        self.progress = progress
        self.stop = threading.Event()
        """Set to end a pull after the page being merged (a later pull resumes there)."""

    def pull(self, tenant: str | None = None) -> PullSummary:
        """Every change since the last pull, for `tenant` or every tenant in the store."""
        summary = PullSummary()
        for name in [tenant] if tenant is not None else self._tenants():
            self._pull_tenant(name, summary)
        return summary

    def run(self, stop: threading.Event, interval_seconds: float) -> None:
        """Pull every `interval_seconds` until `stop` is set (the service's schedule); a
        pull under way when it is set ends after its current page."""
        self.stop = stop
        while not stop.is_set():
            try:
                summary = self.pull()
                log.info("pull: %s", summary.line())
            except PullStopped:
                log.info("pull: stopped for shutdown; the next pull resumes where it was")
            except PullBusy:
                log.info("pull: another pull is running; skipped this round")
            except EhrError as exc:
                log.warning("pull round: the EHR failed (%s); next round as usual", exc.code)
            except Exception:  # a database hiccup must not end the schedule
                log.exception("pull round failed; next round at the usual time")
            stop.wait(interval_seconds)

    def _tenants(self) -> list[str]:
        with self.engine.connect() as conn:
            return tenants(conn)

    def _pull_tenant(self, tenant: str, summary: PullSummary) -> None:
        self._take_lease(tenant)
        try:
            # Patients first: the EHR ids they teach scope every other channel.
            for patients in channels(self.engine, tenant, patients_only=True):
                self._with_retries(tenant, patients.name, summary, self._search_channel, patients)
            every = channels(self.engine, tenant)
            for channel in every[2:]:
                self._with_retries(tenant, channel.name, summary, self._search_channel, channel)
            if self.options.deletions:
                capabilities = self._capabilities(summary)
                for resource_type in dict.fromkeys(c.resource_type for c in every):
                    if capabilities.supports(resource_type, "history-type"):
                        self._with_retries(
                            tenant,
                            f"history/{resource_type}",
                            summary,
                            self._history,
                            resource_type,
                        )
        finally:
            self._drop_lease(tenant)

    def _capabilities(self, summary: PullSummary) -> Capabilities:
        """The EHR's capabilities; none (no history read) when it cannot tell them now."""
        try:
            return self.ehr.capabilities()
        except EhrError as exc:
            log.warning("pull: no CapabilityStatement (%s); deletions not read", type(exc).__name__)
            summary.failed.append(f"history: {type(exc).__name__}")
            return Capabilities()

    def _with_retries(
        self,
        tenant: str,
        name: str,
        summary: PullSummary,
        work: Callable[[str, Any, PullSummary], None],
        what: object,
    ) -> None:
        if self.stop.is_set():
            raise PullStopped
        summary.channels += 1
        for attempt in range(1, self.options.attempts + 1):
            try:
                work(tenant, what, summary)
                return
            except EhrError as exc:
                retry = exc.retryable and attempt < self.options.attempts
                log.warning(
                    "pull %s: %s (attempt %d)%s",
                    name,
                    type(exc).__name__,
                    attempt,
                    "; retrying" if retry else "; giving up until the next pull",
                )
                if not retry:
                    summary.failed.append(f"{name}: {type(exc).__name__}")
                    return
                self.sleep(self.backoff.delay(attempt, exc.retry_after))

    # -- searches -----------------------------------------------------------------------

    def _search_channel(self, tenant: str, channel: Channel, summary: PullSummary) -> None:
        name = f"pull/{channel.name}"
        with self.engine.connect() as conn:
            state = ChannelState.of(load_state(conn, tenant, name))
        if state.run is None:
            top = max((pk for pk, _ in channel.subjects), default=0)
            state.run = Run(until=None, top=top, done=0, after=None)
        run = state.run
        subjects = [s for s in channel.subjects if run.done < s[0] <= run.top]
        while subjects:
            # Subjects the cursor does not cover yet (new patients) are read in full.
            fresh = state.cursor is None or subjects[0][0] > state.upto
            chunk = subjects[: self.options.subjects_per_search]
            chunk = [s for s in chunk if (state.cursor is None or s[0] > state.upto) == fresh]
            since = None if fresh or state.cursor is None else state.cursor - self.options.overlap
            self._search_chunk(tenant, channel, name, state, chunk, since, summary)
            run.done, run.after = chunk[-1][0], None
            subjects = subjects[len(chunk) :]
            with write_transaction(self.engine) as conn:
                save_state(conn, tenant, name, state.as_json(), self.clock())
        done = ChannelState(cursor=run.until or state.cursor, upto=run.top, run=None)
        with write_transaction(self.engine) as conn:
            save_state(conn, tenant, name, done.as_json(), self.clock())

    def _search_chunk(
        self,
        tenant: str,
        channel: Channel,
        name: str,
        state: ChannelState,
        chunk: Sequence[tuple[int, str]],
        since: datetime | None,
        summary: PullSummary,
    ) -> None:
        run = state.run
        assert run is not None
        start = max((t for t in (since, run.after) if t is not None), default=None)
        params: list[tuple[str, str]] = [
            (channel.param, ",".join(value for _, value in chunk)),
            ("_sort", "_lastUpdated"),
            ("_count", str(self.options.page_size)),
        ]
        if start is not None:
            params.append(("_lastUpdated", f"ge{format_instant(start)}"))
        ordered, mark = True, run.after
        pages = self.ehr.search_pages(
            channel.resource_type, params, max_pages=self.options.max_pages
        )
        batch: list[EhrVersion] = []
        pages_in = 0

        def flush() -> None:
            nonlocal batch, pages_in
            if pages_in:
                self._commit(tenant, name, state.as_json(), batch, pages_in, summary)
            batch, pages_in = [], 0

        with Prefetch(pages, PREFETCH_PAGES, "adapter-pull-fetch") as ahead:
            for page in _committing_first(ahead, flush):
                versions = _matches(page.bundle, channel.resource_type)
                stamps = [_last_updated(v) for v in versions]
                ordered = ordered and _ascending(stamps, mark)
                if ordered and stamps:
                    mark = stamps[-1]
                    run.after = mark
                if run.until is None:
                    run.until = page.server_time
                batch += versions
                pages_in += 1
                # Pages already here are merged together: fewer commits, same safety.
                if len(batch) >= self.options.batch_versions or not ahead.ready():
                    flush()
        flush()

    # -- deletions ------------------------------------------------------------------------

    def _history(self, tenant: str, resource_type: str, summary: PullSummary) -> None:
        """Tombstone what the EHR deleted since this channel's cursor (newest first)."""
        state_name = f"pull/history/{resource_type}"
        with self.engine.connect() as conn:
            state = load_state(conn, tenant, state_name)
            cursor = instant(state.get("cursor"))
            since = (
                cursor - self.options.overlap
                if cursor
                else _first_held(conn, tenant, resource_type)
            )
        if since is None:
            return  # nothing of this type on the EHR is ours: nothing to tombstone
        params = [("_count", str(self.options.page_size)), ("_since", format_instant(since))]
        newest_seen: set[EhrRef] = set()
        until: datetime | None = None
        pages = self.ehr.history_pages(resource_type, params, max_pages=self.options.max_pages)
        with Prefetch(pages, PREFETCH_PAGES, "adapter-pull-history") as ahead:
            for page in ahead:
                until = until or page.server_time
                deletions = []
                for entry in objs(page.bundle.get("entry")):
                    found = _history_entry(entry, self.ehr.base_url)
                    if found is None or found.ref in newest_seen:
                        continue  # an older version than one already seen in this history
                    newest_seen.add(found.ref)
                    if found.resource is None:
                        deletions.append(found)
                self._commit(tenant, state_name, state, deletions, 1, summary)
        with write_transaction(self.engine) as conn:
            done = {"cursor": format_instant(until) if until else state.get("cursor")}
            save_state(conn, tenant, state_name, done, self.clock())

    # -- the store ------------------------------------------------------------------------

    def _commit(
        self,
        tenant: str,
        state_name: str,
        state: JsonObject,
        versions: Sequence[EhrVersion],
        pages: int,
        summary: PullSummary,
    ) -> None:
        """One transaction: the versions of `pages` pages and the channel's state after them."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            merger = Merger(conn, tenant, self.ehr.base_url, now)
            counts = merger.merge(versions)
            screen_patients(conn, tenant, merger.medication_patients, now)
            save_state(conn, tenant, state_name, state, now)
            self._renew_lease(conn, tenant, now)
        summary.counts.update(counts)
        summary.pages += pages
        if self.progress is not None:
            self.progress(summary)
        if self.stop.is_set():
            raise PullStopped

    def _take_lease(self, tenant: str) -> None:
        now = self.clock()
        with write_transaction(self.engine) as conn:
            held = load_state(conn, tenant, LEASE_NAME)
            until = instant(held.get("until"))
            owner = held.get("owner")
            live = isinstance(owner, str) and not _gone(owner)
            if owner != self.owner and live and until is not None and until > now:
                raise PullBusy(f"tenant {tenant}: another pull holds the lease")
            self._renew_lease(conn, tenant, now)

    def _renew_lease(self, conn: Connection, tenant: str, now: datetime) -> None:
        lease: JsonObject = {"owner": self.owner, "until": format_instant(now + self.options.lease)}
        save_state(conn, tenant, LEASE_NAME, lease, now)

    def _drop_lease(self, tenant: str) -> None:
        with write_transaction(self.engine) as conn:
            drop_state(conn, tenant, LEASE_NAME)


def _first_held(conn: Connection, tenant: str, resource_type: str) -> datetime | None:
    """Where a first read of a type's history starts: a while before the oldest version we
    hold of a resource the EHR has. Deletions before that cannot concern us, and the whole
    history of a busy EHR is not worth reading. The margin covers the two clocks' skew."""
    oldest = oldest_ehr_version(conn, tenant, resource_type)
    return None if oldest is None else oldest - HISTORY_MARGIN


def _committing_first(pages: Iterable[Page], commit: Callable[[], None]) -> Iterator[Page]:
    """`pages`; when fetching the next one fails, `commit` what was merged so far first, so
    the next pull resumes after it."""
    found = iter(pages)
    while True:
        try:
            page = next(found)
        except StopIteration:
            return
        except Exception:
            commit()
            raise
        yield page


def _gone(owner: str) -> bool:
    """True when a lease's owner (`host:pid:role`) is a process of this host that ended:
    a pull killed mid-way must not keep the next one waiting for its lease to run out."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _matches(bundle: JsonObject, resource_type: str) -> list[EhrVersion]:
    found = []
    for entry in objs(bundle.get("entry")):
        if obj(entry.get("search")).get("mode", "match") != "match":
            continue
        version = version_of(obj(entry.get("resource")))
        if version is None or version.ref.resource_type != resource_type:
            raise EhrBadResponse(f"the EHR's search of {resource_type} holds an unusable entry")
        found.append(version)
    return found


def _history_entry(entry: JsonObject, ehr_base: str) -> EhrVersion | None:
    """One history entry as a version; a deletion has no resource."""
    request = obj(entry.get("request"))
    if request.get("method") != "DELETE":
        resource = obj(entry.get("resource"))
        return version_of(resource) if resource else None
    ref = parse_reference(str_field(request, "url") or "", ehr_base)
    version = str_field(request, "url") or ""
    version = version.rsplit("/_history/", 1)[1] if "/_history/" in version else ""
    if ref is None or not version:
        etag = str_field(obj(entry.get("response")), "etag") or ""
        version = etag.removeprefix("W/").strip('"')
        full = str_field(entry, "fullUrl")
        ref = ref or (parse_reference(full, ehr_base) if full else None)
    if ref is None or not version:
        return None
    return EhrVersion(ref, version, None)


def _ascending(stamps: Sequence[datetime | None], after: datetime | None) -> bool:
    """True when the page's `lastUpdated`s come in order, none before `after`."""
    previous = after
    for stamp in stamps:
        if stamp is None or (previous is not None and stamp < previous):
            return False
        previous = stamp
    return True


def _last_updated(version: EhrVersion) -> datetime | None:
    meta = obj(version.resource.get("meta")) if version.resource is not None else {}
    return instant(str_field(meta, "lastUpdated"))
