"""`/health` and `/ready` through the real app, with the EHR mocked by `responses`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from fastapi.testclient import TestClient

from adapter.api.app import create_app
from adapter.config import Settings

EHR = "http://ehr.test/fhir"
CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "status": "active"}


@pytest.fixture
def ehr() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _client(tmp_path: Path, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'adapter.db'}",
        "ehr_base_url": EHR,
    }
    app = create_app(Settings(**(values | overrides)))
    # Not started (no lifespan): the store counts as migrated unless a test says otherwise.
    app.state.background.migrated.set()
    return TestClient(app)


def _check(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in body["checks"] if c["name"] == name)
    return found


def test_health__always__200_ok(tmp_path: Path) -> None:
    reply = _client(tmp_path, ehr_base_url="").get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_ready__database_and_ehr_up__200_ready(tmp_path: Path, ehr: responses.RequestsMock) -> None:
    ehr.get(f"{EHR}/metadata", json=CAPABILITY)
    reply = _client(tmp_path).get("/ready")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ready"
    assert [(c["name"], c["status"]) for c in body["checks"]] == [
        ("database", "ok"),
        ("schema", "ok"),
        ("ehr", "ok"),
    ]
    assert all(isinstance(c["latency_ms"], float) for c in body["checks"])
    assert "4.0.1" in _check(body, "ehr")["detail"]


def test_ready__store_not_migrated_in_this_process__503_naming_schema(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", json=CAPABILITY)
    client = _client(tmp_path)
    client.app.state.background.migrated.clear()  # type: ignore[attr-defined]
    reply = client.get("/ready")
    assert reply.status_code == 503
    assert _check(reply.json(), "schema")["status"] == "down"
    assert _check(reply.json(), "database")["status"] == "ok"


def test_ready__ehr_probe__asks_for_fhir_json_with_a_timeout(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    call = ehr.get(f"{EHR}/metadata", json=CAPABILITY)
    _client(tmp_path, ehr_timeout_seconds=30).get("/ready")
    request = call.calls[0].request
    assert request.headers["Accept"] == "application/fhir+json"
    assert call.calls[0].request.req_kwargs["timeout"] == 3.0


def test_ready__ehr_answers_500__reports_503_naming_ehr(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", status=500)
    reply = _client(tmp_path).get("/ready")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not_ready"
    assert _check(body, "ehr")["status"] == "down"
    assert _check(body, "ehr")["detail"].startswith("ehr-unavailable")
    assert _check(body, "database")["status"] == "ok"


def test_ready__ehr_connection_refused__reports_503_naming_ehr(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", body=requests.ConnectionError("refused"))
    reply = _client(tmp_path).get("/ready")
    assert reply.status_code == 503
    assert _check(reply.json(), "ehr")["detail"].startswith("ehr-unavailable")


def test_ready__ehr_times_out__reports_503_with_ehr_timeout(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", body=requests.ReadTimeout("slow"))
    reply = _client(tmp_path).get("/ready")
    assert reply.status_code == 503
    assert _check(reply.json(), "ehr")["detail"].startswith("ehr-timeout")


def test_ready__ehr_metadata_not_a_capability_statement__reports_503(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", json={"resourceType": "OperationOutcome"})
    reply = _client(tmp_path).get("/ready")
    assert reply.status_code == 503
    assert _check(reply.json(), "ehr")["detail"].startswith("ehr-bad-response")


def test_ready__ehr_not_configured__200_with_not_configured(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    reply = _client(tmp_path, ehr_base_url="").get("/ready")
    assert reply.status_code == 200
    assert _check(reply.json(), "ehr")["status"] == "not_configured"
    assert len(ehr.calls) == 0


def test_ready__database_unreachable__reports_503_naming_database(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    ehr.get(f"{EHR}/metadata", json=CAPABILITY)
    missing = tmp_path / "no-such-dir" / "adapter.db"
    reply = _client(tmp_path, database_url=f"sqlite:///{missing}").get("/ready")
    assert reply.status_code == 503
    database = _check(reply.json(), "database")
    assert database["status"] == "down"
    assert database["detail"].startswith("OperationalError")


def test_ready__ehr_answers_429_with_retry_after__down_and_not_asked_again_before_then(
    tmp_path: Path, ehr: responses.RequestsMock
) -> None:
    throttled = "http://throttled-ehr.test/fhir"  # a probe pace of its own, as each URL has
    probe = ehr.get(f"{throttled}/metadata", status=429, headers={"Retry-After": "60"})
    client = _client(tmp_path, ehr_base_url=throttled)
    first, second = client.get("/ready"), client.get("/ready")
    assert (first.status_code, second.status_code) == (503, 503)
    assert _check(first.json(), "ehr")["detail"].startswith("ehr-rate-limited")
    assert "held back" in _check(second.json(), "ehr")["detail"]
    assert probe.call_count == 1
