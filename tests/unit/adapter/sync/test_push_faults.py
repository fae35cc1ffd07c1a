"""The push worker on the EHR's error paths (mocked with `responses`; the happy path and
crash recovery run against the real sandbox in tests/integration/test_push_on_sandbox.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses
from sqlalchemy import Engine, select, update

from adapter.api.clinic.status import submission_status
from adapter.ehr.client import FhirClient
from adapter.store import outbox as box
from adapter.store.accept import Submission, accept
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.schema import (
    audit,
    delivered_resources,
    deliveries,
    outbox,
    resources,
    submissions,
)
from adapter.store.subscription_topics import ENCOUNTER, SUBMISSION_FAILED
from adapter.sync.push.worker import Backoff, PushWorker, RetryLimit
from mappings.context import MappingContext
from mappings.encounter.submission import map_submission
from mappings.jsontypes import JsonObject
from tests.store_template import migrated_sqlite
from tests.subscription_store import queued_events, subscribe
from tests.unit.adapter.ehr.support import BASE, capability
from tests.unit.mappings.fhircheck import assert_model_equivalent, load_example
from tests.unit.mappings.jsonpick import at, list_at, obj_at, objs_at

CTX = MappingContext()
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TENANT = "default"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad code"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_store_engine(migrated_sqlite(tmp_path / "store.db"))
    with write_transaction(made) as conn:
        sub = load_example("esketamine-session")
        mapped = map_submission(sub, CTX)
        doc = Submission(TENANT, "encounter", sub.encounter_id, sub.patient.mrn, "e", b"{}")
        accept(conn, doc, mapped, CTX, T0)
    yield made
    made.dispose()


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
        yield mock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _worker(engine: Engine, clock: Clock, limit: RetryLimit | None = None) -> PushWorker:
    client = FhirClient(BASE, sleep=lambda _: None)
    backoff = Backoff(base_seconds=2)
    return PushWorker(engine, client, owner="w1", clock=clock, backoff=backoff, retry_limit=limit)


def _entry(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(outbox)).one()._mapping)


def _sent(request: requests.PreparedRequest) -> JsonObject:
    """The JSON object the worker sent (it sends bytes; a stream or file would be a bug)."""
    body = request.body or b"{}"
    assert isinstance(body, bytes | str), f"request body is not bytes or text: {body!r}"
    sent = json.loads(body)
    assert isinstance(sent, dict), f"request body is not a JSON object: {sent!r}"
    return sent


def _transaction_response(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    answers = [
        {"response": {"status": "201 Created", "location": f"X/{i}/_history/1", "etag": 'W/"1"'}}
        for i, _ in enumerate(list_at(_sent(request), "entry"))
    ]
    body = {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}
    return 200, {}, json.dumps(body)


def test_push__429_with_retry_after__waits_what_the_ehr_asked(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.post(BASE, status=429, headers={"Retry-After": "120"})
    summary = _worker(engine, clock).run_once()
    assert summary.retried == 1
    entry = _entry(engine)
    assert entry["state"] == box.PENDING
    available_at, last_error = entry["available_at"], entry["last_error"]
    assert isinstance(available_at, datetime)
    assert available_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=120)
    assert isinstance(last_error, str)
    assert last_error.startswith("EhrRateLimited")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_push__5xx__retried_later_with_backoff_then_delivered(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock, status: int
) -> None:
    ehr.post(BASE, status=status)
    worker = _worker(engine, clock)
    assert worker.run_once().retried == 1
    assert worker.run_once().claimed == 0  # not due yet: backing off
    ehr.remove(responses.POST, BASE)
    ehr.add_callback(responses.POST, BASE, callback=_transaction_response)
    clock.now = T0 + timedelta(seconds=2)
    assert worker.run_once().done == 1
    assert _entry(engine)["state"] == box.DONE


@pytest.mark.parametrize(
    "failure", [requests.ConnectTimeout("slow"), requests.ConnectionError("reset by peer")]
)
def test_push__timeout_or_connection_reset__retried(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock, failure: Exception
) -> None:
    ehr.post(BASE, body=failure)
    assert _worker(engine, clock).run_once().retried == 1
    assert _entry(engine)["state"] == box.PENDING


def test_push__malformed_answer__retried_not_lost(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.post(BASE, body="<html>proxy error</html>", status=200, content_type="text/html")
    assert _worker(engine, clock).run_once().retried == 1


def test_push__400_with_operation_outcome__dead_letter_keeps_it_and_alerts_once(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ehr.post(BASE, status=400, json=OUTCOME)
    assert _worker(engine, clock).run_once().dead == 1
    entry = _entry(engine)
    assert entry["state"] == box.DEAD
    assert entry["last_status"] == 400
    assert json.loads(str(entry["outcome"]))["operation_outcome"] == OUTCOME
    alerts = [r for r in caplog.records if "ALERT" in r.getMessage()]
    assert len(alerts) == 1
    assert "bad code" not in caplog.text  # the EHR's words may quote clinical data
    with engine.connect() as conn:
        assert conn.execute(select(audit.c.action)).scalars().all() == ["push-dead"]


def test_push__dead_letter__raises_the_submission_failed_event_of_its_encounter(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    failed = subscribe(engine, TENANT, SUBMISSION_FAILED)
    encounters = subscribe(engine, TENANT, ENCOUNTER)
    elsewhere = subscribe(engine, "another-clinic", SUBMISSION_FAILED)
    ehr.post(BASE, status=400, json=OUTCOME)
    assert _worker(engine, clock).run_once().dead == 1
    (event,) = queued_events(engine, failed)
    assert (event.event_number, event.focus_type) == (1, "Encounter")
    assert queued_events(engine, encounters) == []  # stored before it existed, not since
    assert queued_events(engine, elsewhere) == []


def test_push__dead_letter_replayed__delivered(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.post(BASE, status=422, json=OUTCOME)
    worker = _worker(engine, clock)
    worker.run_once()
    ehr.remove(responses.POST, BASE)
    ehr.add_callback(responses.POST, BASE, callback=_transaction_response)
    with write_transaction(engine) as conn:
        assert box.replay(conn, [int(str(_entry(engine)["id"]))], clock.now) == 1
    assert worker.run_once().done == 1


def test_push__412_after_if_match__conflict_keeps_both_versions(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    with write_transaction(engine) as conn:  # as if pushed before: the EHR's ids are known
        conn.execute(update(resources).values(ehr_id="77", ehr_version="1"))
    theirs = {"resourceType": "Patient", "id": "77", "meta": {"versionId": "2"}}
    ehr.post(BASE, status=412, json=OUTCOME)
    ehr.get(f"{BASE}/Patient/77", json=theirs, headers={"ETag": 'W/"2"'})
    assert _worker(engine, clock).run_once().conflicts == 1
    entry = _entry(engine)
    assert entry["state"] == box.CONFLICT
    kept = json.loads(str(entry["outcome"]))["ehr_versions"]
    assert any(v == theirs for v in kept.values())
    puts = [
        obj_at(e, "request")
        for e in objs_at(_sent(ehr.calls[1].request), "entry")
        if at(e, "request", "method") == "PUT"
    ]
    assert all("ifMatch" in request for request in puts)


def test_push__success__records_ehr_ids_versions_and_etags(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.add_callback(responses.POST, BASE, callback=_transaction_response)
    summary = _worker(engine, clock).run_once()
    assert summary.done == 1
    with engine.connect() as conn:
        rows = conn.execute(select(resources.c.ehr_id, resources.c.ehr_version)).all()
    assert rows
    assert all(r.ehr_id is not None and r.ehr_version == "1" for r in rows)


def test_push__success__delivery_provenance_traces_ehr_ids_to_the_submission(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.add_callback(responses.POST, BASE, callback=_transaction_response)
    _worker(engine, clock).run_once()
    with engine.connect() as conn:
        (record,) = conn.execute(select(deliveries.c.provenance, deliveries.c.submission_id)).all()
        keys = conn.execute(select(delivered_resources.c.ehr_reference)).scalars().all()
    provenance = json.loads(record.provenance)
    assert_model_equivalent(provenance)
    assert "0/_history/1" in {t["reference"].split("/", 1)[1] for t in provenance["target"]}
    submission = provenance["entity"][-1]["what"]["identifier"]
    assert submission["value"] == str(record.submission_id)
    assert len(keys) == len(provenance["target"])


def test_push__412_from_conditional_update_with_several_matches__dead_letter_not_conflict(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    several = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": "Failed to UPDATE resource with match URL because this search "
                "matched 2 resources",
            }
        ],
    }
    ehr.post(BASE, status=412, json=several)
    summary = _worker(engine, clock).run_once()
    assert (summary.dead, summary.conflicts) == (1, 0)
    entry = _entry(engine)
    assert entry["state"] == box.DEAD
    assert str(entry["last_error"]).startswith("EhrAmbiguousMatch")
    assert json.loads(str(entry["outcome"]))["operation_outcome"] == several


def test_push__503_with_retry_after__next_try_not_before_it_and_nothing_claimed_meanwhile(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.post(BASE, status=503, headers={"Retry-After": "5"})
    worker = _worker(engine, clock)
    assert worker.run_once().retried == 1
    entry = _entry(engine)
    available_at = entry["available_at"]
    assert isinstance(available_at, datetime)
    assert available_at.replace(tzinfo=UTC) == T0 + timedelta(seconds=5)
    clock.now = T0 + timedelta(seconds=10)  # due by the store's clock, but the EHR's pause
    assert worker.ehr.pace.remaining() > 0  # (on the client's own clock) still lasts
    assert worker.run_once().claimed == 0


def _age(engine: Engine, attempts: int, hours: float) -> None:
    """As if the entry had been tried `attempts` times since it was queued `hours` ago."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(outbox).values(attempts=attempts, created_at=T0 - timedelta(hours=hours))
        )


@pytest.mark.parametrize(("attempts", "hours"), [(2, 100.0), (9, 1.0)])
def test_push__retryable_failure_within_the_limit__retried(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock, attempts: int, hours: float
) -> None:
    ehr.post(BASE, status=502)
    _age(engine, attempts, hours)
    limit = RetryLimit(max_attempts=10, max_age=timedelta(hours=72))
    assert _worker(engine, clock, limit).run_once().retried == 1
    assert _entry(engine)["state"] == box.PENDING


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ({"status": 503}, "ehr-unavailable"),
        ({"body": requests.ReadTimeout("slow")}, "ehr-timeout"),
        ({"status": 429}, "ehr-rate-limited"),
    ],
)
def test_push__retryable_failure_past_attempts_and_age__dead_letter_with_last_reason(
    engine: Engine,
    ehr: responses.RequestsMock,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    reply: dict[str, object],
    code: str,
) -> None:
    ehr.add(responses.POST, BASE, **reply)  # type: ignore[arg-type]
    _age(engine, attempts=9, hours=73)  # the claim makes it the 10th attempt
    limit = RetryLimit(max_attempts=10, max_age=timedelta(hours=72))
    assert _worker(engine, clock, limit).run_once().dead == 1
    entry = _entry(engine)
    assert entry["state"] == box.DEAD
    assert str(entry["last_error"]).startswith("gave up after 10 attempts since ")
    with engine.connect() as conn:
        (action, outcome) = conn.execute(select(audit.c.action, audit.c.outcome)).one()
        public_id = conn.execute(select(submissions.c.public_id)).scalar_one()
        status = submission_status(conn, TENANT, public_id)
    assert action == "push-dead"
    assert outcome.endswith(" after retries")
    assert status is not None
    assert status["status"] == "failed"
    assert status["reason"] == {
        "http_status": entry["last_status"],
        "diagnostics": [],
        "error": code,
        "gave_up_after_attempts": 10,
    }
    assert "gave up after 10 attempts" in caplog.text


def test_push__dead_letter_of_given_up_retries_replayed__tried_again(
    engine: Engine, ehr: responses.RequestsMock, clock: Clock
) -> None:
    ehr.post(BASE, status=500)
    _age(engine, attempts=9, hours=73)
    worker = _worker(engine, clock, RetryLimit(max_attempts=10, max_age=timedelta(hours=72)))
    assert worker.run_once().dead == 1
    with write_transaction(engine) as conn:
        box.replay(conn, [int(str(_entry(engine)["id"]))], clock.now)
    assert worker.run_once().retried == 1  # attempts start again; the age alone is not enough


def test_backoff__retry_after__kept_even_past_the_backoff_cap_but_zero_backs_off() -> None:
    backoff = Backoff(base_seconds=2, cap_seconds=60)
    assert backoff.delay(1, retry_after=120) == 120  # capped where it was read, not here
    assert 1 <= backoff.delay(1, retry_after=0) <= 2  # "come back now" does not spin
