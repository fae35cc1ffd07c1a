"""Per-record submissions: one intake, infusion, vital-signs set or medication review alone."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter.store.schema import resources
from tests.unit.adapter.api.conftest import (
    JSON,
    READER_A,
    WRITER_A,
    WRITER_B,
    bearer,
    example,
    post_encounter,
)

EXAMPLE = "typical-ketamine-infusion"
RECORD_FIELDS = ("intake_screening", "infusion", "vitals", "medication_review")
# endpoint path -> the encounter document's field holding such a record
KINDS = {
    "intake-screenings": "intake_screening",
    "infusions": "infusion",
    "vitals": "vitals",
    "medication-reviews": "medication_review",
}
PATHS = list(KINDS)


def _encounter_without_records() -> dict[str, Any]:
    document = example(EXAMPLE)
    for field in RECORD_FIELDS:
        document.pop(field, None)
    return document


def _record(path: str, name: str = EXAMPLE) -> dict[str, Any]:
    """The example's record of that kind, sent alone: + `encounter_id` and `patient_mrn`."""
    document = example(name)
    record = document[KINDS[path]]
    if isinstance(record, list):
        record = record[0]
    head = {"encounter_id": document["encounter_id"], "patient_mrn": document["patient"]["mrn"]}
    body: dict[str, Any] = head | record
    return body


def _changed(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with one clinical value changed."""
    changed: dict[str, Any] = json.loads(json.dumps(body))
    if path == "intake-screenings":
        changed["pain_score"] = 6
    elif path == "infusions":
        changed["notes"] = "patient tolerated the session well"
    elif path == "vitals":
        changed["heart_rate"]["value"] += 4
    else:
        changed["medications"][0]["dose"] = "150 mg"
    return changed


def post_record(
    client: TestClient,
    path: str,
    body: bytes | dict[str, Any],
    key: str = WRITER_A,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": JSON} | bearer(key) | (headers or {})
    return client.post(f"/clinic/{path}", content=content, headers=sent)


@pytest.fixture
def encounter(client: TestClient) -> dict[str, Any]:
    """The example's encounter without its records, accepted for clinic-a."""
    reply = post_encounter(client, _encounter_without_records())
    assert reply.status_code == 201
    body: dict[str, Any] = reply.json()
    return body


def _current(app: FastAPI, tenant: str = "clinic-a") -> dict[str, tuple[int, bool]]:
    """Every stored resource of `tenant`: reference -> (version, deleted)."""
    with app.state.engine.connect() as conn:
        rows = conn.execute(
            select(
                resources.c.resource_type,
                resources.c.logical_id,
                resources.c.version,
                resources.c.deleted,
            ).where(resources.c.tenant == tenant)
        ).all()
    return {f"{r.resource_type}/{r.logical_id}": (r.version, r.deleted) for r in rows}


def _problem(reply: httpx2.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    return body


def _fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]


# ---------------------------------------------------------------- accepted


@pytest.mark.parametrize("path", PATHS)
def test_post__first_receipt__201_with_its_resources_and_a_provenance(
    client: TestClient, encounter: dict[str, Any], path: str
) -> None:
    reply = post_record(client, path, _record(path))
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["encounter_id"] == encounter["encounter_id"]
    assert body["status"] == "stored"
    assert body["status_url"] == f"/clinic/submissions/{body['submission_id']}"
    assert reply.headers["Location"] == body["status_url"]
    assert reply.headers["content-type"] == JSON
    assert body["created"]
    assert body["updated"] == body["unchanged"] == body["deleted"] == []
    assert not set(body["created"]) & set(encounter["created"])
    assert sum(ref.startswith("Provenance/") for ref in body["created"]) == 1
    status = client.get(body["status_url"], headers=bearer(WRITER_A))
    assert status.status_code == 200
    assert status.json()["status"] == "stored"


@pytest.mark.parametrize("path", PATHS)
def test_post__identical_resend__200_nothing_changed(
    client: TestClient, encounter: dict[str, Any], path: str
) -> None:
    first = post_record(client, path, _record(path)).json()
    reply = post_record(client, path, _record(path))
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "unchanged"
    assert body["created"] == body["updated"] == body["deleted"] == []
    assert sorted(body["unchanged"]) == sorted(first["created"])
    assert body["submission_id"] != first["submission_id"]


@pytest.mark.parametrize("path", PATHS)
def test_post__changed_resend__updates_only_that_records_resources(
    app: FastAPI, client: TestClient, encounter: dict[str, Any], path: str
) -> None:
    others = [p for p in PATHS if p != path]
    for other in others:
        assert post_record(client, other, _record(other)).status_code == 201
    first = post_record(client, path, _record(path)).json()
    before = _current(app)
    reply = post_record(client, path, _changed(path, _record(path)))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "stored"
    assert body["updated"]
    assert body["created"] == body["deleted"] == []
    assert set(body["updated"]) <= set(first["created"])
    after = _current(app)
    moved = {ref for ref in after if after[ref] != before.get(ref)}
    assert moved == set(body["updated"])


def test_post__reading_resent_without_a_measure__deletes_only_its_observation(
    app: FastAPI, client: TestClient, encounter: dict[str, Any]
) -> None:
    first = post_record(client, "vitals", _record("vitals")).json()
    other = _record("vitals", EXAMPLE) | {"vitals_id": "VS-EXTRA"}
    assert post_record(client, "vitals", other).status_code == 201
    smaller = _record("vitals")
    del smaller["temperature"]
    body = post_record(client, "vitals", smaller).json()
    assert len(body["deleted"]) == 1
    assert body["deleted"][0].startswith("Observation/")
    assert set(body["deleted"]) | set(body["updated"]) <= set(first["created"])
    stored = _current(app)
    assert [ref for ref, (_, deleted) in stored.items() if deleted] == body["deleted"]


@pytest.mark.parametrize("path", PATHS)
def test_post__record_already_sent_in_its_encounter__only_its_provenance_is_new(
    client: TestClient, path: str
) -> None:
    """Mapped alone, a record gives the resources its encounter gave it (same providers,
    same infusion), so only the record's own Provenance is created."""
    whole = post_encounter(client, example(EXAMPLE)).json()
    body = post_record(client, path, _record(path)).json()
    assert [ref.split("/")[0] for ref in body["created"]] == ["Provenance"]
    assert body["updated"] == body["deleted"] == []
    assert set(body["unchanged"]) <= set(whole["created"])


def test_post__same_idempotency_key_and_body__first_answer_replayed(
    client: TestClient, encounter: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": "record-1"}
    first = post_record(client, "infusions", _record("infusions"), headers=key)
    again = post_record(client, "infusions", _record("infusions"), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = _changed("infusions", _record("infusions"))
    _problem(post_record(client, "infusions", changed, headers=key), 422)


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize("path", PATHS)
def test_post__patient_never_sent__409_naming_patient_mrn(client: TestClient, path: str) -> None:
    problem = _problem(post_record(client, path, _record(path)), 409)
    assert _fields(problem) == ["patient_mrn"]
    assert "patient_mrn" in problem["detail"]
    assert "MRN-004211" not in json.dumps(problem)


@pytest.mark.parametrize("path", PATHS)
def test_post__encounter_never_sent__409_naming_encounter_id(
    client: TestClient, encounter: dict[str, Any], path: str
) -> None:
    body = _record(path) | {"encounter_id": "ENC-NEVER-SENT"}
    problem = _problem(post_record(client, path, body), 409)
    assert _fields(problem) == ["encounter_id"]
    assert "encounter_id" in problem["detail"]


def test_post__encounter_of_another_patient__409_naming_encounter_id(
    client: TestClient, encounter: dict[str, Any]
) -> None:
    assert post_encounter(client, example("esketamine-session")).status_code == 201
    body = _record("vitals") | {"encounter_id": example("esketamine-session")["encounter_id"]}
    assert _fields(_problem(post_record(client, "vitals", body), 409)) == ["encounter_id"]


@pytest.mark.parametrize("path", PATHS)
def test_post__patient_of_another_tenant__409(
    client: TestClient, encounter: dict[str, Any], path: str
) -> None:
    problem = _problem(post_record(client, path, _record(path), key=WRITER_B), 409)
    assert _fields(problem) == ["patient_mrn"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("infusions", "administered_by"),
        ("infusions", "monitored_by"),
        ("medication-reviews", "reviewed_by"),
    ],
)
def test_post__provider_the_clinic_never_sent__422_naming_the_field(
    client: TestClient, encounter: dict[str, Any], path: str, field: str
) -> None:
    body = _record(path) | {field: "PRV-UNKNOWN"}
    problem = _problem(post_record(client, path, body), 422)
    assert _fields(problem) == [field]


@pytest.mark.parametrize(
    ("path", "change", "field"),
    [
        ("intake-screenings", {"pain_score": 11}, "pain_score"),
        ("infusions", {"total_dose_mg": -1}, "total_dose_mg"),
        ("vitals", {"heart_rate": {"value": 900, "unit": "/min"}}, "heart_rate"),
        ("medication-reviews", {"reviewed_at": "2026-11-20T08:50:00"}, "reviewed_at"),
        ("vitals", {"surprise": 1}, "surprise"),
        ("infusions", {"patient_mrn": "bad mrn!"}, "patient_mrn"),
    ],
)
def test_post__invalid_field__422_naming_it(
    client: TestClient, encounter: dict[str, Any], path: str, change: dict[str, Any], field: str
) -> None:
    problem = _problem(post_record(client, path, _record(path) | change), 422)
    assert any(name == field or name.startswith(f"{field}.") for name in _fields(problem)), problem


@pytest.mark.parametrize("path", PATHS)
def test_post__invalid_record_without_its_encounter__422_before_409(
    client: TestClient, path: str
) -> None:
    body = _record(path) | {"unexpected": True}
    assert _fields(_problem(post_record(client, path, body), 422)) == ["unexpected"]


@pytest.mark.parametrize("path", PATHS)
def test_post__without_key__401(client: TestClient, path: str) -> None:
    reply = client.post(
        f"/clinic/{path}", content=json.dumps(_record(path)), headers={"Content-Type": JSON}
    )
    _problem(reply, 401)
    assert reply.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", PATHS)
def test_post__key_without_write_scope__403(client: TestClient, path: str) -> None:
    _problem(post_record(client, path, _record(path), key=READER_A), 403)


@pytest.mark.parametrize("path", PATHS)
def test_post__not_json_media_type__415(client: TestClient, path: str) -> None:
    reply = post_record(client, path, _record(path), headers={"Content-Type": "text/plain"})
    _problem(reply, 415)


@pytest.mark.parametrize("path", PATHS)
def test_post__not_json_at_all__400_at_root(client: TestClient, path: str) -> None:
    problem = _problem(post_record(client, path, b"{not json"), 400)
    assert _fields(problem) == ["$"]


@pytest.mark.parametrize("path", PATHS)
def test_post__accepted_and_refused__logs_hold_no_clinical_data(
    client: TestClient, encounter: dict[str, Any], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    post_record(client, path, _record(path))
    post_record(client, path, _changed(path, _record(path)))
    post_record(client, path, _record(path) | {"patient_mrn": "MRN-SENTINEL-7731"})
    post_record(client, path, _record(path) | {"encounter_id": "ENC-SENTINEL-42"})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "clinic API: submission" in logged
    for secret in ("MRN-004211", "MRN-SENTINEL-7731", "ENC-SENTINEL-42", "ENC-2026-1120-001"):
        assert secret not in logged
