"""The audit trail on PostgreSQL, over real HTTP, and its AuditEvents valid for HAPI FHIR.

The service runs on a real uvicorn with the store on the test PostgreSQL; a clinic
document is posted, resources are read and refused through /fhir, and the admin's
`GET /admin/AuditEvent` answer is checked by the sandbox's `AuditEvent/$validate`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.api.app import create_app
from adapter.config import Settings
from tests.integration.support import FHIR_JSON
from tests.unit.adapter.api.conftest import example_bytes, serve

pytestmark = pytest.mark.integration

WRITER = f"audit-writer-{uuid.uuid4().hex}"
READER = f"audit-reader-{uuid.uuid4().hex}"
ADMIN = f"audit-admin-{uuid.uuid4().hex}"


@pytest.fixture
def service(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    tenant = f"audit-{uuid.uuid4().hex[:12]}"
    keys = [
        {"key": WRITER, "tenant": tenant, "scopes": ["clinic/*.*"]},
        {"key": READER, "tenant": tenant, "scopes": ["system/*.rs"]},
        {"key": ADMIN, "tenant": tenant, "scopes": ["admin/AuditEvent.rs"]},
    ]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys))
    settings = Settings(
        database_url=postgres_url,
        ehr_base_url="",
        run_worker=False,
        api_keys_file=str(keys_file),
        namespace=f"https://fhir.audit-{uuid.uuid4().hex[:10]}.example",
    )
    app = create_app(settings)
    for port in serve(app):
        yield f"http://127.0.0.1:{port}"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _audit_bundle(url: str) -> dict[str, Any]:
    # The writer thread batches: poll until every call made so far shows.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = requests.get(f"{url}/admin/AuditEvent", headers=_auth(ADMIN), timeout=30)
        assert reply.status_code == 200, reply.text
        bundle: dict[str, Any] = reply.json()
        if len(bundle["entry"]) >= 4:
            return bundle
        time.sleep(0.1)
    pytest.fail("the audit trail did not show the calls within 30 s")


def test_audit_events__recorded_on_postgres_and_valid_for_hapi(
    service: str, fhir_base_url: str
) -> None:
    posted = requests.post(
        f"{service}/clinic/encounters",
        data=example_bytes("esketamine-session"),
        headers={"Content-Type": "application/json"} | _auth(WRITER),
        timeout=30,
    )
    assert posted.status_code == 201
    patient = next(ref for ref in posted.json()["created"] if ref.startswith("Patient/"))
    assert requests.get(f"{service}/fhir/{patient}", headers=_auth(READER), timeout=30).ok
    missing = requests.get(f"{service}/fhir/Patient/nobody", headers=_auth(READER), timeout=30)
    assert missing.status_code == 404
    assert requests.get(f"{service}/fhir/{patient}", timeout=30).status_code == 401

    bundle = _audit_bundle(service)
    events = [entry["resource"] for entry in bundle["entry"]]
    assert [event["action"] for event in reversed(events)][:3] == ["C", "R", "R"]
    assert [event["outcome"] for event in reversed(events)][:3] == ["0", "0", "4"]
    for event in events:
        reply = requests.post(
            f"{fhir_base_url}/AuditEvent/$validate",
            data=json.dumps(event),
            headers=FHIR_JSON,
            timeout=30,
        )
        issues = reply.json().get("issue", [])
        errors = [i for i in issues if i.get("severity") in ("error", "fatal")]
        assert errors == [], (event, errors)


def test_audit_bundle__valid_for_hapi_and_every_full_url_answers_its_event(
    service: str, fhir_base_url: str
) -> None:
    patient = requests.get(f"{service}/fhir/Patient/nobody", headers=_auth(READER), timeout=10)
    assert patient.status_code == 404
    for _ in range(3):
        assert requests.get(f"{service}/admin/AuditEvent", headers=_auth(ADMIN), timeout=10).ok
    bundle = _audit_bundle(service)
    reply = requests.post(
        f"{fhir_base_url}/Bundle/$validate", data=json.dumps(bundle), headers=FHIR_JSON, timeout=60
    )
    issues = reply.json().get("issue", [])
    assert [i for i in issues if i.get("severity") in ("error", "fatal")] == []
    for entry in bundle["entry"]:
        read = requests.get(entry["fullUrl"], headers=_auth(ADMIN), timeout=10)
        assert read.status_code == 200, entry["fullUrl"]
        assert read.json() == entry["resource"]
