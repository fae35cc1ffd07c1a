"""`AlertWatch`: looks at the store and the EHR every `ADAPTER_ALERT_CHECK_SECONDS` and
sends what needs a person to the webhook (`adapter.alerts.webhook`).

- a dead letter: outbox entries parked as dead since the last such message;
- a conflict: outbox entries parked on one, and conflicts the pull opened, since the last;
- the EHR unreachable: its readiness probe has failed for `ADAPTER_ALERT_EHR_DOWN_SECONDS`;
- the outbox waiting: its oldest waiting entry is older than
  `ADAPTER_ALERT_OLDEST_WAITING_SECONDS`;
- a subscription error: FHIR Subscriptions whose receivers failed past
  `ADAPTER_SUBSCRIPTION_MAX_FAILURES`, since the last such message.

What a held-back message would have said is not lost: a kind's "since" moves on only when
its message goes out, so the next one counts everything since the last that did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from adapter.alerts.webhook import (
    CONFLICT,
    DEAD_LETTER,
    EHR_UNREACHABLE,
    OUTBOX_WAITING,
    SUBSCRIPTION_ERROR,
    Alert,
    Webhook,
)
from adapter.config import Settings
from adapter.ingest import utc_now
from adapter.readiness import CheckResult, check_ehr
from adapter.store import operations
from adapter.store.engine import Engine
from adapter.store.outbox import CONFLICT as CONFLICT_STATE
from adapter.store.outbox import DEAD
from adapter.store.subscription_queue import errored_since

log = logging.getLogger(__name__)
CONSOLE_PATH = "/console"


class AlertWatch:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        webhook: Webhook,
        *,
        clock: Callable[[], datetime] = utc_now,
        ehr_check: Callable[[Settings], CheckResult] = check_ehr,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.webhook = webhook
        self.clock = clock
        self.ehr_check = ehr_check
        started = clock()
        self._since = {DEAD_LETTER: started, CONFLICT: started, SUBSCRIPTION_ERROR: started}
        self._ehr_down_since: datetime | None = None

    def run(self, stop: threading.Event) -> None:
        """Check every `ADAPTER_ALERT_CHECK_SECONDS` until `stop` is set."""
        while not stop.wait(self.settings.alert_check_seconds):
            try:
                self.check()
            except Exception:  # a database hiccup must not end the watch
                log.exception("alert check failed; next check as usual")

    def check(self) -> None:
        now = self.clock()
        self._dead_letters(now)
        self._conflicts(now)
        self._outbox_waiting(now)
        self._subscription_errors(now)
        if self.settings.is_ehr_configured:
            self._ehr(now)

    def _dead_letters(self, now: datetime) -> None:
        with self.engine.connect() as conn:
            dead = operations.parked_entries(conn, states=(DEAD,), since=self._since[DEAD_LETTER])
        if dead and self._send(
            DEAD_LETTER, f"{len(dead)} outbox entries refused by the EHR", [e.id for e in dead]
        ):
            self._since[DEAD_LETTER] = max(e.updated_at for e in dead)

    def _conflicts(self, now: datetime) -> None:
        since = self._since[CONFLICT]
        with self.engine.connect() as conn:
            parked = operations.parked_entries(conn, states=(CONFLICT_STATE,), since=since)
            opened = operations.conflicts_opened(conn, since)
        count = len(parked) + len(opened)
        summary = (
            f"{len(opened)} resources changed on both sides, "
            f"{len(parked)} outbox entries parked on a conflict"
        )
        if count and self._send(
            CONFLICT, summary, opened + [e.id for e in parked], page="conflicts"
        ):
            self._since[CONFLICT] = now

    def _outbox_waiting(self, now: datetime) -> None:
        with self.engine.connect() as conn:
            figures = operations.outbox_figures(conn)
        oldest = figures.oldest_waiting
        if oldest is None:
            return
        age = (now - oldest).total_seconds()
        if age >= self.settings.alert_oldest_waiting_seconds:
            waiting = sum(figures.by_state.get(s, 0) for s in operations.WAITING)
            summary = f"the oldest of {waiting} waiting outbox entries waits for {age:.0f} s"
            self._send(OUTBOX_WAITING, summary, [], page="", seconds=age, count=waiting)

    def _subscription_errors(self, now: datetime) -> None:
        with self.engine.connect() as conn:
            failed = errored_since(conn, self._since[SUBSCRIPTION_ERROR])
        summary = f"{len(failed)} FHIR Subscriptions in error: their receivers kept failing"
        if failed and self._send(SUBSCRIPTION_ERROR, summary, failed, page="subscriptions"):
            self._since[SUBSCRIPTION_ERROR] = now

    def _ehr(self, now: datetime) -> None:
        if not self.ehr_check(self.settings).is_down:
            self._ehr_down_since = None
            return
        if self._ehr_down_since is None:
            self._ehr_down_since = now
        down = (now - self._ehr_down_since).total_seconds()
        if down >= self.settings.alert_ehr_down_seconds:
            summary = f"the EHR has not answered for {down:.0f} s"
            self._send(EHR_UNREACHABLE, summary, [], page="", seconds=down, count=1)

    def _send(
        self,
        kind: str,
        summary: str,
        ids: list[int],
        *,
        page: str = "dead-letters",
        seconds: float | None = None,
        count: int | None = None,
    ) -> bool:
        base = (self.settings.console_url or CONSOLE_PATH).rstrip("/")
        link = f"{base}/{page}" if page else base
        alert = Alert(kind, summary, len(ids) if count is None else count, link, ids, seconds)
        return self.webhook.send(alert)


def watch_in_background(
    settings: Settings, engine: Engine, stop: threading.Event
) -> threading.Thread | None:
    """Start the alert watch in a daemon thread when a webhook is configured: the thread."""
    if not settings.alert_webhook_url:
        return None
    webhook = Webhook(settings.alert_webhook_url, settings.alert_interval_seconds)
    watch = AlertWatch(settings, engine, webhook)
    thread = threading.Thread(target=watch.run, args=(stop,), name="adapter-alerts", daemon=True)
    thread.start()
    return thread
