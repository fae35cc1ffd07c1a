"""The service's background work: migrate the store, then push the outbox, deliver the FHIR
Subscriptions' notifications (with `ADAPTER_RUN_WORKER`, in a thread of its own) and pull the
EHR's changes (every `ADAPTER_PULL_INTERVAL_SECONDS`, in a second thread) until shutdown,
and keep the store's retentions (`adapter.store.upkeep`).

Runs in one daemon thread so the HTTP side starts at once, even while the database or the
EHR is down (readiness reports that); the thread keeps retrying the migration, and the
worker keeps retrying the EHR, until they answer.

With several web processes (`ADAPTER_WEB_WORKERS`), the parent process does this work
once, and each web process runs `BackgroundWork(..., lead=False)`: it only waits until the
store is at the newest schema, so that no two processes migrate at once.
"""

from __future__ import annotations

import logging
import threading
import time

from adapter.alerts.watch import watch_in_background
from adapter.config import Settings
from adapter.errors import AdapterError
from adapter.runtime import deliverer, ehr_client, puller, push_worker
from adapter.store.engine import Engine, StoreError
from adapter.store.migrate import current_revision, head_revision, upgrade
from adapter.store.upkeep import Retention, upkeep_in_background

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0
FOLLOW_SECONDS = 0.5


class BackgroundWork:
    def __init__(self, settings: Settings, engine: Engine, *, lead: bool = True) -> None:
        self.settings = settings
        self.engine = engine
        self.lead = lead
        self.migrated = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The threads the lead thread starts (alert watch, store upkeep, deliverer), so that
        # stopping waits for them too: none may be using the engine when it is disposed.
        self._helpers: list[threading.Thread] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="adapter-background", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every thread to stop and wait for them, `timeout` seconds in all: the lead
        thread first (once it has ended it starts no more), then the ones it started."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        for helper in self._helpers:
            helper.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.lead:
                    upgrade(self.engine)
                    break
                if current_revision(self.engine) == head_revision():
                    break
                self._stop.wait(FOLLOW_SECONDS)
            except StoreError as exc:
                log.warning("migration failed (%s); retrying", type(exc).__name__)
                self._stop.wait(RETRY_SECONDS)
        else:
            return
        self.migrated.set()
        if not self.lead:
            return
        watch = watch_in_background(self.settings, self.engine, self._stop)
        if watch is not None:
            self._helpers.append(watch)
        retention = Retention(
            self.settings.audit_retention_days, self.settings.subscription_retention_days
        )
        self._helpers.append(upkeep_in_background(self.engine, retention, self._stop))
        if self.settings.run_worker:
            notify = deliverer(self.settings, self.engine, "service").run
            delivering = threading.Thread(
                target=notify, args=(self._stop,), name="adapter-notify", daemon=True
            )
            delivering.start()
            self._helpers.append(delivering)
        pulling = self.settings.pull_interval_seconds > 0
        if not (self.settings.is_ehr_configured and (self.settings.run_worker or pulling)):
            log.info("push worker and pull not started (off, or no EHR configured)")
            return
        try:
            client = ehr_client(self.settings)
        except AdapterError as exc:
            log.error("push worker and pull not started: %s", type(exc).__name__)
            return
        with client:
            if pulling:
                schedule = puller(self.settings, self.engine, client, "service").run
                interval = self.settings.pull_interval_seconds
                pull = threading.Thread(
                    target=schedule, args=(self._stop, interval), name="adapter-pull", daemon=True
                )
                pull.start()
            if self.settings.run_worker:
                push_worker(self.settings, self.engine, client, "service").run(self._stop)
            else:
                self._stop.wait()
            if pulling:
                pull.join()
