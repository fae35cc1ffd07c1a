"""Bulk Data `$export` on a temp SQLite store: kick-off, status, manifest, files, cancel,
and every refusal (another client's job or file, another tenant's Group, scopes)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api.app import create_app
from adapter.errors import ConfigError
from adapter.export.groups import load_groups
from adapter.store import export_jobs
from tests.unit.adapter.api.conftest import (
    KEYS,
    WRITER_A,
    bearer,
    example,
    post_encounter,
    running,
    settings_for,
    write_keys,
)

EXPORTER_A = "exporter-of-clinic-a-0123456789abcdef"
OTHER_EXPORTER_A = "other-exporter-of-clinic-a-0123456789ab"
PATIENT_ONLY_A = "patient-reader-of-clinic-a-0123456789ab"
EXPORTER_B = "exporter-of-clinic-b-0123456789abcdef"
EXPORT_KEYS = [
    *KEYS,
    {"key": EXPORTER_A, "tenant": "clinic-a", "scopes": ["system/*.rs"]},
    {"key": OTHER_EXPORTER_A, "tenant": "clinic-a", "scopes": ["system/*.rs"]},
    {"key": PATIENT_ONLY_A, "tenant": "clinic-a", "scopes": ["system/Patient.rs"]},
    {"key": EXPORTER_B, "tenant": "clinic-b", "scopes": ["system/*.rs"]},
]
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
DEADLINE_SECONDS = 60.0


def export_settings(folder: Path, **overrides: Any) -> Any:
    groups = folder / "groups.json"
    groups.write_text(json.dumps([{"tenant": "clinic-b", "id": "b-cohort", "patients": []}]))
    keys_folder = folder / "export-keys"
    keys_folder.mkdir(exist_ok=True)
    values = {
        "api_keys_file": str(write_keys(keys_folder, EXPORT_KEYS)),
        "export_dir": str(folder / "exports"),
        "export_groups_file": str(groups),
    }
    return settings_for(folder, **(values | overrides))


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(export_settings(tmp_path, export_file_max_resources=10))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    for client in running(app):
        document = example("typical-ketamine-infusion")
        assert post_encounter(client, document).status_code == 201
        yield client


def kick_off(client: TestClient, path: str = "/fhir/$export", key: str = EXPORTER_A) -> str:
    reply = client.get(path, headers=ASYNC | bearer(key))
    assert reply.status_code == 202, reply.text
    return reply.headers["Content-Location"]


def manifest(client: TestClient, status_url: str, key: str = EXPORTER_A) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        reply = client.get(status_url, headers=bearer(key))
        if reply.status_code == 200:
            document: dict[str, Any] = reply.json()
            return document
        assert reply.status_code == 202, reply.text
        assert reply.headers["X-Progress"]
        time.sleep(min(float(reply.headers["Retry-After"]), 0.2))
    raise AssertionError("the export did not finish in time")


def lines_of(client: TestClient, url: str, key: str = EXPORTER_A) -> list[dict[str, Any]]:
    reply = client.get(url, headers=bearer(key))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/fhir+ndjson")
    return [json.loads(line) for line in reply.text.splitlines()]


def test_system_export__every_resource_as_fhir_serves_it(client: TestClient) -> None:
    found = manifest(client, kick_off(client))

    assert found["requiresAccessToken"] is True
    assert found["request"].endswith("/fhir/$export")
    assert found["error"] == []
    assert found["deleted"] == []
    counted: Counter[str] = Counter()
    for output in found["output"]:
        lines = lines_of(client, output["url"])
        assert len(lines) == output["count"] <= 10
        for resource in lines:
            assert resource["resourceType"] == output["type"]
            path = f"/fhir/{resource['resourceType']}/{resource['id']}"
            assert client.get(path, headers=bearer(EXPORTER_A)).json() == resource
        counted[output["type"]] += len(lines)
    # Observations (25) went over the 10-a-file limit: three files.
    assert [o["count"] for o in found["output"] if o["type"] == "Observation"] == [10, 10, 5]
    for kind, count in counted.items():
        search = client.get(f"/fhir/{kind}?_summary=count", headers=bearer(EXPORTER_A)).json()
        assert search["total"] == count, kind


def test_export__reads_a_snapshot__later_writes_land_in_the_next(tmp_path: Path) -> None:
    app = create_app(export_settings(tmp_path))
    first, between, later = (datetime(2026, 12, 1, hour, tzinfo=UTC) for hour in (8, 9, 10))
    for client in running(app):
        document = example("typical-ketamine-infusion")
        app.state.clock = lambda: first
        assert post_encounter(client, document).status_code == 201
        document["patient"]["given_name"] = "Renamed"
        app.state.clock = lambda: later
        assert post_encounter(client, document).status_code == 200
        app.state.clock = lambda: between
        found = manifest(client, kick_off(client, "/fhir/$export?_type=Patient"))
        (patient,) = lines_of(client, found["output"][0]["url"])
        version_one = f"/fhir/Patient/{patient['id']}/_history/1"
        assert client.get(version_one, headers=bearer(EXPORTER_A)).json() == patient
        app.state.clock = lambda: later + timedelta(hours=1)
        found = manifest(client, kick_off(client, "/fhir/$export?_type=Patient"))
        (patient,) = lines_of(client, found["output"][0]["url"])
    assert found["transactionTime"].startswith("2026-12-01T11:00:00")
    assert patient["meta"]["versionId"] == "2"


def test_patient_and_group_exports__the_compartment_only(client: TestClient) -> None:
    for path in ("/fhir/Patient/$export", "/fhir/Group/all-patients/$export"):
        found = manifest(client, kick_off(client, path))
        kinds = {output["type"] for output in found["output"]}
        assert "Patient" in kinds
        assert "Observation" in kinds
        assert not kinds & {"Organization", "Practitioner", "PractitionerRole"}


def test_type_filter_and_elements(client: TestClient) -> None:
    patient = client.get("/fhir/Patient", headers=bearer(EXPORTER_A)).json()["entry"][0]
    pid = patient["resource"]["id"]
    query = f"_type=Patient&_typeFilter=Patient%3F_id%3D{pid}&_elements=id,gender"
    found = manifest(client, kick_off(client, f"/fhir/$export?{query}"))

    (output,) = found["output"]
    (line,) = lines_of(client, output["url"])
    assert set(line) <= {"resourceType", "id", "meta", "gender"}
    assert {"code": "SUBSETTED"}.items() <= line["meta"]["tag"][-1].items()


def test_post_kick_off_with_parameters(client: TestClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Encounter"},
            {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        ],
    }
    reply = client.post("/fhir/$export", json=body, headers=ASYNC | bearer(EXPORTER_A))
    assert reply.status_code == 202
    found = manifest(client, reply.headers["Content-Location"])
    assert [output["type"] for output in found["output"]] == ["Encounter"]


def test_another_clients_status_and_files__not_found(client: TestClient) -> None:
    status_url = kick_off(client)
    found = manifest(client, status_url)
    url = found["output"][0]["url"]

    for key in (OTHER_EXPORTER_A, EXPORTER_B):
        assert client.get(status_url, headers=bearer(key)).status_code == 404
        assert client.get(url, headers=bearer(key)).status_code == 404
        assert client.delete(status_url, headers=bearer(key)).status_code == 404
    assert client.get(url).status_code == 401


def test_another_tenants_group__not_found(client: TestClient) -> None:
    reply = client.get("/fhir/Group/b-cohort/$export", headers=ASYNC | bearer(EXPORTER_A))
    assert reply.status_code == 404
    assert kick_off(client, "/fhir/Group/b-cohort/$export", key=EXPORTER_B)


def test_cancel__removes_job_and_files(client: TestClient, tmp_path: Path) -> None:
    status_url = kick_off(client)
    found = manifest(client, status_url)

    assert client.delete(status_url, headers=bearer(EXPORTER_A)).status_code == 202
    assert client.get(status_url, headers=bearer(EXPORTER_A)).status_code == 404
    assert client.get(found["output"][0]["url"], headers=bearer(EXPORTER_A)).status_code == 404
    assert list((tmp_path / "exports").iterdir()) == []


def test_scopes__only_readable_types_and_403_for_others(client: TestClient) -> None:
    found = manifest(client, kick_off(client, key=PATIENT_ONLY_A), key=PATIENT_ONLY_A)
    assert {output["type"] for output in found["output"]} == {"Patient"}
    reply = client.get("/fhir/$export?_type=Observation", headers=ASYNC | bearer(PATIENT_ONLY_A))
    assert reply.status_code == 403
    writer = client.get("/fhir/$export", headers=ASYNC | bearer(WRITER_A))
    assert writer.status_code == 403


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("_outputFormat=text/csv", "_outputFormat"),
        ("_type=Nothing", "_type"),
        ("_since=yesterday", "_since"),
        ("_typeFilter=Observation%3Fnope%3D1", "nope"),
        ("_elements=1bad", "_elements"),
        ("_count=5", "_count"),
    ],
)
def test_bad_parameter__400_naming_it(client: TestClient, query: str, named: str) -> None:
    reply = client.get(f"/fhir/$export?{query}", headers=ASYNC | bearer(EXPORTER_A))
    assert reply.status_code == 400
    assert named in reply.json()["issue"][0]["diagnostics"]


def test_without_prefer_respond_async__400(client: TestClient) -> None:
    reply = client.get("/fhir/$export", headers=bearer(EXPORTER_A))
    assert reply.status_code == 400
    assert "respond-async" in reply.json()["issue"][0]["diagnostics"]


def test_too_many_running__429_with_retry_after(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    owner = hashlib.sha256(EXPORTER_A.encode()).hexdigest()[:8]
    for _ in range(2):
        export_jobs.start_job(engine, "clinic-a", owner, "-", "{}", datetime.now(UTC), 2)

    refused = client.get("/fhir/$export", headers=ASYNC | bearer(EXPORTER_A))
    others = client.get("/fhir/$export", headers=ASYNC | bearer(OTHER_EXPORTER_A))

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert others.status_code == 202


def test_audit__each_kick_off_status_download_and_cancel(client: TestClient) -> None:
    status_url = kick_off(client)
    found = manifest(client, status_url)
    lines_of(client, found["output"][0]["url"])
    client.delete(status_url, headers=bearer(EXPORTER_A))
    client.app.state.audit_writer.flush()  # type: ignore[attr-defined]

    events = _audit_rows(client)
    targets = [target for action, target in events]
    assert any(t == "$export" for t in targets)
    assert any(t.startswith("$export-poll-status/") for t in targets)
    assert any(t.startswith("$export-file/") for t in targets)
    assert ("delete", targets[-1]) in events


def _audit_rows(client: TestClient) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from adapter.store.schema import audit

    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(audit.c.action, audit.c.object).order_by(audit.c.id)).all()
    return [(str(row[0]), str(row[1])) for row in rows if "export" in str(row[1])]


def test_job_left_by_a_dead_process__ends_failed_saying_why(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    owner = hashlib.sha256(EXPORTER_A.encode()).hexdigest()[:8]
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job = export_jobs.start_job(engine, "clinic-a", owner, "-", "{}", long_ago, 2)
    assert job is not None

    reply = client.get(f"/fhir/$export-poll-status/{job.public_id}", headers=bearer(EXPORTER_A))

    assert reply.status_code == 500
    assert reply.json()["issue"][0]["diagnostics"] == export_jobs.STOPPED_REASON


def test_since__only_later_changes__deletions_listed_as_deleted(tmp_path: Path) -> None:
    app = create_app(export_settings(tmp_path))
    first, later = datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 1, 10, tzinfo=UTC)
    for client in running(app):
        document = example("typical-ketamine-infusion")
        app.state.clock = lambda: first
        assert post_encounter(client, document).status_code == 201
        dropped = document["vitals"].pop()
        app.state.clock = lambda: later
        assert post_encounter(client, document).status_code == 200
        app.state.clock = lambda: later + timedelta(hours=1)
        found = manifest(client, kick_off(client, "/fhir/$export?_since=2026-12-01T09:00:00Z"))
        deleted = [line for d in found["deleted"] for line in lines_of(client, d["url"])]
        changed = [line for o in found["output"] for line in lines_of(client, o["url"])]
    assert dropped["vitals_id"]
    assert deleted
    assert all(bundle["type"] == "transaction" for bundle in deleted)
    methods = {entry["request"]["method"] for bundle in deleted for entry in bundle["entry"]}
    assert methods == {"DELETE"}
    assert {d["type"] for d in found["deleted"]} == {"Bundle"}
    assert all(line["meta"]["lastUpdated"] >= "2026-12-01T09:00:00" for line in changed)


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        ([{"tenant": "a", "id": "all-patients", "patients": []}], "all-patients"),
        ([{"tenant": "a", "id": "g"}], "patients"),
        ([{"tenant": "a", "id": "g", "patients": []}] * 2, "repeats"),
        ({"tenant": "a"}, "JSON list"),
    ],
)
def test_groups_file__bad_entry__refused_naming_it(
    tmp_path: Path, entries: object, named: str
) -> None:
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigError) as caught:
        load_groups(str(path))
    assert "ADAPTER_EXPORT_GROUPS_FILE" in str(caught.value)
    assert named in str(caught.value)
