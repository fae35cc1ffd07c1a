"""`GET /clinic/submissions/{id}`: each outbox state as the clinic sees it, within its tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from adapter.store.engine import write_transaction
from adapter.store.schema import delivered_resources, deliveries, outbox
from tests.unit.adapter.api.conftest import (
    READER_A,
    WRITE_ONLY_A,
    WRITER_A,
    WRITER_B,
    bearer,
    example_bytes,
    post_encounter,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REJECTION = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "processing", "diagnostics": "Observation.code: unknown"},
        {"severity": "error", "code": "invalid", "details": {"text": "bad reference"}},
        {"severity": "warning", "code": "informational"},
    ],
}


def _submit(client: TestClient, name: str = "esketamine-session", key: str = WRITER_A) -> Any:
    reply = post_encounter(client, example_bytes(name), key)
    assert reply.status_code in (200, 201)
    return reply.json()


def _status(client: TestClient, submission_id: object, key: str = READER_A) -> Any:
    return client.get(f"/clinic/submissions/{submission_id}", headers=bearer(key))


def _set_outbox(app: FastAPI, outbox_id: int, **values: object) -> None:
    with write_transaction(app.state.engine) as conn:
        conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))


def _outbox_id(app: FastAPI) -> int:
    with app.state.engine.connect() as conn:
        return int(conn.execute(select(outbox.c.id)).scalar_one())


def test_status__just_accepted__stored(client: TestClient) -> None:
    receipt = _submit(client)
    reply = _status(client, receipt["submission_id"])
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "stored"
    assert body["submission_id"] == receipt["submission_id"]
    assert body["encounter_id"] == receipt["encounter_id"]
    assert body["attempts"] == 0
    assert datetime.fromisoformat(body["received_at"]).tzinfo is not None


def test_status__in_flight__still_stored(app: FastAPI, client: TestClient) -> None:
    receipt = _submit(client)
    _set_outbox(app, _outbox_id(app), state="in_flight", lease_owner="w", attempts=1)
    assert _status(client, receipt["submission_id"]).json()["status"] == "stored"


def test_status__identical_resend__unchanged(client: TestClient) -> None:
    _submit(client)
    resend = _submit(client)
    body = _status(client, resend["submission_id"]).json()
    assert body["status"] == "unchanged"
    assert "attempts" not in body


def test_status__done__pushed_with_the_ehr_references(app: FastAPI, client: TestClient) -> None:
    receipt = _submit(client)
    outbox_id = _outbox_id(app)
    encounter = next(ref for ref in receipt["created"] if ref.startswith("Encounter/"))
    _set_outbox(app, outbox_id, state="done", attempts=1)
    with write_transaction(app.state.engine) as conn:
        number = conn.execute(select(outbox.c.submission_id)).scalar_one()
        delivery = conn.execute(
            insert(deliveries)
            .values(
                tenant="clinic-a",
                outbox_id=outbox_id,
                submission_id=number,
                at=NOW,
                provenance="{}",
            )
            .returning(deliveries.c.id)
        ).scalar_one()
        conn.execute(
            insert(delivered_resources).values(
                delivery_id=delivery,
                resource_key=encounter,
                ehr_reference="Encounter/4711",
                ehr_version="2",
            )
        )
    body = _status(client, receipt["submission_id"]).json()
    assert body["status"] == "pushed"
    assert body["ehr_references"] == [
        {"resource": encounter, "ehr_reference": "Encounter/4711", "ehr_version": "2"}
    ]


def test_status__dead__failed_with_ehr_status_and_diagnostics(
    app: FastAPI, client: TestClient
) -> None:
    receipt = _submit(client)
    kept = orjson.dumps({"operation_outcome": REJECTION}).decode()
    _set_outbox(app, _outbox_id(app), state="dead", last_status=422, outcome=kept, attempts=1)
    body = _status(client, receipt["submission_id"]).json()
    assert body["status"] == "failed"
    assert body["reason"] == {
        "http_status": 422,
        "diagnostics": ["Observation.code: unknown", "bad reference"],
    }


def test_status__dead_without_an_outcome__failed_with_the_status_only(
    app: FastAPI, client: TestClient
) -> None:
    receipt = _submit(client)
    kept = orjson.dumps({"operation_outcome": None}).decode()
    _set_outbox(app, _outbox_id(app), state="dead", last_status=400, outcome=kept)
    body = _status(client, receipt["submission_id"]).json()
    assert body["reason"] == {"http_status": 400, "diagnostics": []}


def test_status__dead_after_retries_given_up__failed_with_last_error_and_attempts(
    app: FastAPI, client: TestClient
) -> None:
    receipt = _submit(client)
    kept = {"operation_outcome": None, "error": "ehr-timeout", "gave_up_after_attempts": 20}
    outcome = orjson.dumps(kept).decode()
    _set_outbox(app, _outbox_id(app), state="dead", last_status=None, outcome=outcome, attempts=20)
    body = _status(client, receipt["submission_id"]).json()
    assert body["status"] == "failed"
    assert body["reason"] == {
        "http_status": None,
        "diagnostics": [],
        "error": "ehr-timeout",
        "gave_up_after_attempts": 20,
    }


def test_status__conflict__conflict_with_the_412(app: FastAPI, client: TestClient) -> None:
    receipt = _submit(client)
    kept = orjson.dumps({"ehr_versions": {}, "operation_outcome": REJECTION}).decode()
    _set_outbox(app, _outbox_id(app), state="conflict", last_status=412, outcome=kept)
    body = _status(client, receipt["submission_id"]).json()
    assert body["status"] == "conflict"
    assert body["reason"]["http_status"] == 412
    assert "ehr_versions" not in body


def test_status__other_tenants_submission__404_like_an_unknown_one(client: TestClient) -> None:
    receipt = _submit(client)
    theirs = _status(client, receipt["submission_id"], WRITER_B)
    unknown = _status(client, 999_999, WRITER_B)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()
    assert theirs.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("submission_id", ["abc", "-1", "1.0", "٣", "9" * 19])
def test_status__id_that_cannot_exist__404(client: TestClient, submission_id: str) -> None:
    assert _status(client, submission_id).status_code == 404


def test_status__key_without_read_scope__403(client: TestClient) -> None:
    receipt = _submit(client, key=WRITE_ONLY_A)
    reply = _status(client, receipt["submission_id"], WRITE_ONLY_A)
    assert reply.status_code == 403
    assert "clinic/submissions.read" in reply.json()["detail"]
