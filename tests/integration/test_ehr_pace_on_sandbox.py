"""The EHR's pace, through a throttling proxy in front of the real sandbox: every call waits
at least as long as `Retry-After` asked (seconds or HTTP date), and retries end.

The waits are measured between the requests' arrivals at the proxy, so they are what the
EHR would see, whatever the load of the machine running the test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from adapter.api.clinic.status import submission_status
from adapter.cli import main
from adapter.ehr.client import FhirClient
from adapter.ingest import ingest_encounter
from adapter.store import outbox as box
from adapter.store.schema import audit, submissions
from adapter.sync.ehr_retry import retried
from adapter.sync.push.worker import Backoff, PushWorker, RetryLimit
from adapter.sync.reconcile.report import plan, reconcile_tenant
from mappings.common.bundle import resource_identity
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from tests.integration.faultproxy import FaultProxy
from tests.integration.support import encounter, run_context, sandbox_count

pytestmark = pytest.mark.integration

# Retries that do not wait for the EHR's word come quickly: any wait measured is its word.
QUICK = Backoff(base_seconds=0.05, cap_seconds=0.2)
DEADLINE_SECONDS = 120.0


def _one_encounter(engine: Engine) -> MappingContext:
    """One encounter accepted under a namespace of this test's own; its context."""
    ctx = run_context()
    ingest_encounter(engine, encounter(1).model_dump_json(exclude_none=True).encode(), ctx)
    return ctx


def _worker(engine: Engine, base: str, limit: RetryLimit | None = None) -> PushWorker:
    return PushWorker(engine, FhirClient(base), owner="it", backoff=QUICK, retry_limit=limit)


def _push_until(engine: Engine, worker: PushWorker, state: str) -> None:
    """Push rounds until the one entry is in `state`, polling under a deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        with engine.connect() as conn:
            found = box.counts(conn)
        if found == {state: 1}:
            return
        assert time.monotonic() < deadline, found
        if not worker.run_once().claimed:
            time.sleep(0.05)


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def _on_sandbox(base: str, ctx: MappingContext) -> int:
    """How many copies of the test's Encounter the sandbox holds."""
    mapped = map_submission(encounter(1), ctx)
    found = next(r for r in mapped if r["resourceType"] == "Encounter")
    return sandbox_count(base, "Encounter", resource_identity(found, ctx).system)


def test_push__503_with_retry_after_5_on_a_transaction__next_try_not_before_5_s(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = _one_encounter(store)
    with FaultProxy(fhir_base_url) as proxy:
        proxy.refuse_next(1, "POST", 503, retry_after="5")
        _push_until(store, _worker(store, proxy.url), box.DONE)
        posts = [a.at for a in proxy.arrived("POST")]
    assert len(posts) == 2
    assert _gaps(posts)[0] >= 5.0
    assert _on_sandbox(fhir_base_url, ctx) == 1


def test_push__503_with_retry_after_as_http_date__next_try_not_before_that_date(
    fhir_base_url: str, store: Engine
) -> None:
    _one_encounter(store)
    come_back = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    with FaultProxy(fhir_base_url) as proxy:
        proxy.refuse_next(1, "POST", 503, retry_after=format_datetime(come_back, usegmt=True))
        _push_until(store, _worker(store, proxy.url), box.DONE)
        posts = proxy.arrived("POST")
    assert len(posts) == 2
    assert posts[1].wall >= come_back.timestamp()


def test_push__429_on_metadata__retried_after_its_retry_after(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = _one_encounter(store)
    with FaultProxy(fhir_base_url) as proxy:
        proxy.refuse_next(1, "GET", 429, retry_after="3", path_end="/metadata")
        _push_until(store, _worker(store, proxy.url), box.DONE)
        probes = [a.at for a in proxy.arrived("GET", "/metadata")]
        posts = proxy.arrived("POST")
    assert len(probes) == 2
    assert _gaps(probes)[0] >= 3.0
    assert len(posts) == 1
    assert _on_sandbox(fhir_base_url, ctx) == 1


def test_pull_probe__429_on_metadata__waits_its_retry_after_then_reads_it(
    fhir_base_url: str,
) -> None:
    with FaultProxy(fhir_base_url) as proxy, FhirClient(proxy.url) as client:
        proxy.refuse_next(1, "GET", 429, retry_after="2", path_end="/metadata")
        # As `adapter pull` probes the EHR before its first channel.
        found = retried(client.capabilities, attempts=3, backoff=QUICK, sleep=time.sleep)
        probes = [a.at for a in proxy.arrived("GET", "/metadata")]
    assert found.supports_transaction
    assert len(probes) == 2
    assert _gaps(probes)[0] >= 2.0


def test_reconcile__429_with_retry_after__compared_after_the_wait(
    fhir_base_url: str, store: Engine
) -> None:
    ctx = _one_encounter(store)
    with FhirClient(fhir_base_url) as direct:
        assert PushWorker(store, direct, owner="it", backoff=QUICK).drain().done == 1
    with store.connect() as conn:
        work = plan(conn, ctx.tenant)
    with FaultProxy(fhir_base_url) as proxy, FhirClient(proxy.url) as client:
        proxy.refuse_next(1, "GET", 429, retry_after="2")
        result = reconcile_tenant(store, client, work)
        reads = [a.at for a in proxy.arrived("GET")]
    assert result.patients == 1
    assert result.differences == []
    assert _gaps(reads)[0] >= 2.0


def test_push__ehr_keeps_answering_503__dead_letter_after_the_limit_with_the_last_reason(
    fhir_base_url: str,
    store: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _one_encounter(store)
    limit = RetryLimit(max_attempts=3, max_age=timedelta(0))
    with FaultProxy(fhir_base_url) as proxy:
        proxy.refuse_next(100, "POST", 503, retry_after="1")
        _push_until(store, _worker(store, proxy.url, limit), box.DEAD)
        posts = [a.at for a in proxy.arrived("POST")]
    assert len(posts) == 3
    assert all(gap >= 1.0 for gap in _gaps(posts))
    with store.connect() as conn:
        public_id = conn.execute(select(submissions.c.public_id)).scalar_one()
        status = submission_status(conn, "default", public_id)
        audited = conn.execute(select(audit.c.action, audit.c.outcome)).all()
    assert status is not None
    assert status["status"] == "failed"
    assert status["reason"] == {
        "http_status": 503,
        "diagnostics": [],
        "error": "ehr-unavailable",
        "gave_up_after_attempts": 3,
    }
    assert [tuple(row) for row in audited] == [("push-dead", "EhrUnavailable after retries")]
    monkeypatch.setenv("ADAPTER_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    capsys.readouterr()
    assert main(["outbox", "list"]) == 0
    listed = capsys.readouterr().out
    assert "\tdead\t" in listed
    assert "gave up after 3 attempts since " in listed
