"""A reconcile started from the console: one at a time per process, in a background
thread, with its progress (patients compared of all) and, when done, its differences."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from adapter.config import Settings
from adapter.errors import AdapterError
from adapter.ingest import utc_now
from adapter.runtime import ehr_client
from adapter.store.engine import Engine
from adapter.sync.reconcile.compare import Difference
from adapter.sync.reconcile.report import plan, reconcile_tenant

log = logging.getLogger(__name__)


@dataclass
class ReconcileRun:
    tenant: str
    started_by: str
    started_at: datetime
    total: int = 0
    done: int = 0
    finished: bool = False
    failure: str | None = None
    """The error class that ended it early."""
    differences: list[Difference] = field(default_factory=list)


class Reconciles:
    """The latest run per tenant; `start` refuses while one of the tenant's runs."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._runs: dict[str, ReconcileRun] = {}
        self._lock = threading.Lock()

    def latest(self, tenant: str) -> ReconcileRun | None:
        return self._runs.get(tenant)

    def latest_of(self, tenant: str | None) -> list[ReconcileRun]:
        """The latest run of `tenant`, or of every tenant (None), by tenant."""
        with self._lock:
            runs = dict(self._runs)
        return [runs[t] for t in sorted(runs) if tenant is None or t == tenant]

    def start(self, tenant: str, operator: str) -> bool:
        """Start a run for `tenant`; False when one is under way already."""
        with self._lock:
            running = self._runs.get(tenant)
            if running is not None and not running.finished:
                return False
            run = ReconcileRun(tenant, operator, utc_now())
            self._runs[tenant] = run
        threading.Thread(
            target=self._run, args=(run,), name="console-reconcile", daemon=True
        ).start()
        return True

    def _run(self, run: ReconcileRun) -> None:
        try:
            with self.engine.connect() as conn:
                work = plan(conn, run.tenant)
            run.total = len(work.patients) + 1
            with ehr_client(self.settings) as client:
                result = reconcile_tenant(
                    self.engine,
                    client,
                    work,
                    concurrency=self.settings.worker_concurrency,
                    advance=lambda: _advance(run),
                )
            run.differences = result.differences
        except AdapterError as exc:
            run.failure = type(exc).__name__
        except Exception as exc:  # the console shows it failed; the log says why
            log.exception("console reconcile failed")
            run.failure = type(exc).__name__
        finally:
            run.finished = True


def _advance(run: ReconcileRun) -> None:
    run.done += 1
