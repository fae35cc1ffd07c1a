"""Readiness: probe each dependency (database, EHR) and report status and latency per check.

A check is `ok`, `down` or `not_configured`; the service is ready when no check is `down`.
Details name error classes and HTTP statuses only, never URLs with credentials or data.
After the EHR answers the probe 429 or 503 with `Retry-After`, the probe does not ask it
again until then (whatever polls `/ready`): the check stays `down`, saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from adapter.config import Settings
from adapter.ehr.capability import fetch_capability_statement
from adapter.ehr.pace import Pace
from adapter.errors import EhrError
from adapter.store.engine import Engine, StoreError, ping

CheckStatus = Literal["ok", "down", "not_configured"]
# Readiness must answer quickly even when the EHR timeout is long.
MAX_EHR_PROBE_SECONDS = 3.0
MAX_DETAIL_CHARS = 200

log = logging.getLogger(__name__)

# The EHR's last Retry-After to the probe, per base URL, for as long as the process lives.
_paces: dict[str, Pace] = {}
_paces_lock = threading.Lock()


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    latency_ms: float
    detail: str

    @property
    def is_down(self) -> bool:
        return self.status == "down"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def check_all(settings: Settings, engine: Engine, migrated: bool) -> list[CheckResult]:
    """Every readiness check, in a fixed order; `migrated`: this process has seen the store
    at the newest schema (until then its routes that use the store answer 503)."""
    results = [check_database(engine), check_schema(migrated), check_ehr(settings)]
    log.debug("readiness: %s", " ".join(f"{r.name}={r.status}" for r in results))
    return results


def check_database(engine: Engine) -> CheckResult:
    """Open a connection to the store and run `SELECT 1`."""

    def probe() -> str:
        ping(engine)
        return f"{engine.dialect.name} answered SELECT 1"

    return _timed("database", probe, StoreError)


def check_schema(migrated: bool) -> CheckResult:
    """Whether this process may use the store: it migrated it, or saw the process that
    migrates it finish. A web process that has not is alive but not ready."""
    if migrated:
        return CheckResult("schema", "ok", 0.0, "the store is at the newest schema")
    detail = "the store is being migrated, or this process waits for the one migrating it"
    return CheckResult("schema", "down", 0.0, detail)


def check_ehr(settings: Settings) -> CheckResult:
    """Ask the configured EHR for its CapabilityStatement, with a short timeout."""
    if not settings.is_ehr_configured:
        return CheckResult("ehr", "not_configured", 0.0, "ADAPTER_EHR_BASE_URL is empty")
    timeout = min(settings.ehr_timeout_seconds, MAX_EHR_PROBE_SECONDS)

    def probe() -> str:
        pace = _pace_of(settings)
        capability = fetch_capability_statement(settings.ehr_base_url, timeout, pace=pace)
        return f"CapabilityStatement, fhirVersion {capability.get('fhirVersion', 'unknown')}"

    return _timed("ehr", probe, EhrError)


def _pace_of(settings: Settings) -> Pace:
    with _paces_lock:
        if settings.ehr_base_url not in _paces:
            limit = settings.ehr_retry_after_max_seconds
            _paces[settings.ehr_base_url] = Pace(time.time, max_seconds=limit)
        return _paces[settings.ehr_base_url]


def _timed(name: str, probe: Callable[[], str], failure: type[Exception]) -> CheckResult:
    started = time.perf_counter()
    status: CheckStatus = "ok"
    try:
        detail = probe()
    except failure as exc:
        status, detail = "down", _describe_failure(exc)
        log.warning("readiness check %s is down: %s", name, type(exc).__name__)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, status, latency_ms, detail)


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, EhrError):
        return f"{exc.code}: {exc}"
    first_line = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
    return f"{type(exc).__name__}: {first_line}"[:MAX_DETAIL_CHARS]
