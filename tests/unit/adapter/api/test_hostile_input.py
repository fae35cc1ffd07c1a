"""Hostile input on both faces: chunked bodies over the limit on a real uvicorn, and a
sentinel patient sent through every path never leaking into logs, error bodies or audit."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter.api.app import create_app
from adapter.api.clinic import encounters
from adapter.ehr.client import FhirClient
from adapter.store.schema import audit
from adapter.sync.push.worker import Backoff, PushWorker
from tests.unit.adapter.api.conftest import (
    JSON,
    KEYS,
    SENTINELS,
    WRITER_A,
    bearer,
    example_bytes,
    post_encounter,
    running,
    sentinel_document,
    serve,
    settings_for,
    write_keys,
)
from tests.unit.adapter.ehr.support import BASE, capability

LIMIT = 8000
READER_FHIR = "fhir-reader-of-clinic-a-0123456789abcdef"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    """The app on a real uvicorn on a free loopback port, with an 8,000-byte body limit."""
    yield from serve(create_app(settings_for(tmp_path, max_body_bytes=LIMIT)))


def _post_chunked(port: int, path: str, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": JSON, "Transfer-Encoding": "chunked"} | bearer(WRITER_A)
    connection.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
    reply = connection.getresponse()
    result = reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    connection.close()
    return result


def test_chunked_body_over_the_limit__413_from_a_real_server(served: int) -> None:
    status, headers, body = _post_chunked(served, "/clinic/encounters", [b" " * 1000] * 20)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    assert "content-length" not in {k.lower() for k in headers if k == "transfer-encoding"}


def test_chunked_body_within_the_limit__accepted(served: int) -> None:
    document = example_bytes("esketamine-session")
    assert len(document) < LIMIT
    chunks = [document[i : i + 500] for i in range(0, len(document), 500)]
    status, _, body = _post_chunked(served, "/clinic/encounters", chunks)
    assert status == 201, body


def test_chunked_body_over_the_limit_on_fhir_face__refused_without_500(served: int) -> None:
    status, headers, _ = _post_chunked(served, "/fhir/Patient", [b"{" * 1000] * 20)
    assert status in (405, 413)
    assert "x-request-id" in headers


def _failing_ehr(mock: responses.RequestsMock) -> None:
    """An EHR that refuses the Bundle and, as EHRs do, echoes the patient in its reason."""
    mock.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
    echo = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": (
                    "Patient Zebulon-Sentinel Quixotewhistle MRN-SENTINEL-7731 1911-11-11"
                ),
            }
        ],
    }
    mock.post(BASE, json=echo, status=400)


def _statuses(client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    document = sentinel_document()
    raw = json.dumps(document).encode()
    record = {"encounter_id": "ENC-SENTINEL-42", "patient_mrn": "MRN-SENTINEL-7731-X"}
    record |= document["vitals"][0]
    replies = [
        post_encounter(client, document),
        post_encounter(client, raw.replace(b'"mrn"', b'"mrn": "MRN-SENTINEL-7731", "mrn"', 1)),
        post_encounter(client, raw.replace(b"Quixotewhistle", b"Quixotewhistle\xff")),
        post_encounter(client, raw.replace(b'"1911-11-11"', b'"1911-11-11x"')),
        client.post(
            "/clinic/vitals",
            content=json.dumps(record),
            headers={"Content-Type": JSON} | bearer(WRITER_A),
        ),
        post_encounter(client, raw + b" " * LIMIT),
        client.get("/fhir/Patient/MRN-SENTINEL-7731", headers=bearer(WRITER_A)),
        client.get("/fhir/Patient/Zebulon Sentinel!", headers=bearer(WRITER_A)),
        client.get(
            "/fhir/Observation?MRN-SENTINEL-7731=1&patient=MRN-SENTINEL-7731",
            headers=bearer(READER_FHIR),
        ),
    ]

    def bug(*_: object, **__: object) -> None:
        raise ValueError("Zebulon-Sentinel 1911-11-11 MRN-SENTINEL-7731")

    monkeypatch.setattr(encounters, "ingest_encounter", bug)
    replies.append(post_encounter(client, raw))
    for reply in replies[1:]:
        for sentinel in SENTINELS:
            assert sentinel not in _shown(reply), (reply.status_code, sentinel)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _failing_ehr(mock)
        worker = PushWorker(
            app.state.engine,
            FhirClient(BASE, sleep=lambda _: None),
            owner="w1",
            backoff=Backoff(base_seconds=0),
        )
        summary = worker.run_once()
    assert summary.dead == 1
    return [reply.status_code for reply in replies]


def _shown(reply: Any) -> str:
    """What an answer tells beyond the caller's own query. A searchset's `self` link must
    repeat the parameters the server used (FHIR), a `patient=` value typed by the caller
    included; a parameter it ignored is not repeated, there or in the outcome."""
    body = reply.json() if reply.headers.get("content-type", "").endswith("json") else None
    if not (isinstance(body, dict) and body.get("type") == "searchset"):
        return str(reply.text)
    for link in body.pop("link"):
        assert "MRN-SENTINEL-7731=" not in link["url"]
    return json.dumps(body)


def test_sentinel__every_path__absent_from_logs_error_bodies_and_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = tmp_path / "keys"
    keys.mkdir()
    reader = {"key": READER_FHIR, "tenant": "clinic-a", "scopes": ["system/*.rs"]}
    app = create_app(
        settings_for(
            tmp_path,
            max_body_bytes=LIMIT,
            run_worker=False,
            api_keys_file=str(write_keys(keys, [*KEYS, reader])),
        )
    )
    for client in running(app):
        statuses = _statuses(client, app, monkeypatch)
        app.state.audit_writer.flush()
    assert statuses[:8] + statuses[9:] == [201, 400, 400, 422, 409, 413, 403, 403, 500]
    assert statuses[8] < 500  # a search, however the search routes answer it
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "unhandled ValueError" in ours
    with app.state.engine.connect() as connection:
        rows: list[dict[str, Any]] = [dict(r) for r in connection.execute(select(audit)).mappings()]
    assert len(rows) >= len(statuses) + 1  # every request, and the push's dead letter
    stored = json.dumps(rows, default=str)
    for sentinel in SENTINELS:
        assert sentinel not in ours
        assert sentinel not in stored
