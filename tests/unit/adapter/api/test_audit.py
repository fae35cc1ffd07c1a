"""The audit trail: every data call recorded (refusals too), readable as R4 AuditEvents."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter.api.app import create_app
from adapter.api.middleware.audit import answer_count, describe
from adapter.store.schema import audit
from tests.unit.adapter.api.conftest import (
    KEYS,
    READER_A,
    SENTINELS,
    WRITER_A,
    WRITER_B,
    bearer,
    example,
    post_encounter,
    running,
    sentinel_document,
    settings_for,
    write_keys,
)
from tests.unit.mappings.fhircheck import assert_model_equivalent

ADMIN_A = "auditor-of-clinic-a-0123456789abcdef"
ADMIN_B = "auditor-of-clinic-b-0123456789abcdef"
FHIR_READER_A = "fhir-reader-of-clinic-a-0123456789abcdef"
AUDIT_KEYS = [
    *KEYS,
    {"key": ADMIN_A, "tenant": "clinic-a", "scopes": ["admin/AuditEvent.rs"]},
    {"key": ADMIN_B, "tenant": "clinic-b", "scopes": ["admin/*.read"]},
    {"key": FHIR_READER_A, "tenant": "clinic-a", "scopes": ["system/*.rs"]},
]


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/fhir/Patient/abc-1", b"", ("read", "Patient/abc-1")),
        ("GET", "/fhir/Patient/abc/_history/2", b"", ("vread", "Patient/abc/_history/2")),
        ("GET", "/fhir/Patient/abc/_history", b"", ("history-instance", "Patient/abc")),
        ("GET", "/fhir/Observation/_history", b"", ("history-type", "Observation")),
        (
            "GET",
            "/fhir/Observation",
            b"patient=Patient/x&code=1234-5&code=9",
            ("search-type", "Observation?code,patient"),
        ),
        ("GET", "/fhir/Observation", b"MRN-1%20x=1", ("search-type", "Observation??")),
        (
            "GET",
            "/fhir/Patient/p1/$everything",
            b"_since=2020",
            ("operation", "Patient/p1/$everything?_since"),
        ),
        ("GET", "/fhir/Patient/bad id!", b"", ("read", "Patient/(invalid)")),
        ("GET", "/fhir/patient/x", b"", ("read", "(invalid)/x")),
        ("GET", "/clinic/submissions/abc", b"", ("read", "Submission/abc")),
        ("POST", "/clinic/encounters", b"", ("create", "clinic/encounters")),
        ("GET", "/admin/AuditEvent", b"date=ge2020-01-01", ("search-type", "AuditEvent?date")),
    ],
)
def test_describe__interaction_and_object_from_the_path_alone(
    method: str, path: str, query: bytes, expected: tuple[str, str]
) -> None:
    assert describe(method, path, query) == expected


def test_describe__refused_request__ids_withheld() -> None:
    assert describe("GET", "/fhir/Patient/MRN-1", b"", keep_ids=False) == (
        "read",
        "Patient/(withheld)",
    )
    assert describe("GET", "/clinic/submissions/7", b"", keep_ids=False)[1] == (
        "Submission/(withheld)"
    )


@pytest.fixture
def audited_app(tmp_path: Path) -> FastAPI:
    keys_folder = tmp_path / "keys"
    keys_folder.mkdir()
    return create_app(
        settings_for(tmp_path, api_keys_file=str(write_keys(keys_folder, AUDIT_KEYS)))
    )


@pytest.fixture
def audited(audited_app: FastAPI) -> Iterator[TestClient]:
    yield from running(audited_app)


def _events(client: TestClient, key: str = ADMIN_A, query: str = "") -> list[dict[str, Any]]:
    client.app.state.audit_writer.flush()  # type: ignore[attr-defined]
    reply = client.get(f"/admin/AuditEvent{query}", headers=bearer(key))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/fhir+json"
    bundle = reply.json()
    assert bundle["resourceType"] == "Bundle"
    return [entry["resource"] for entry in bundle["entry"]]


def _summary(event: dict[str, Any]) -> tuple[str, str, str, str]:
    entity = event["entity"][0]
    what = entity.get("what", {}).get("reference") or entity["description"]
    return event["subtype"][0]["code"], event["action"], what, event["outcomeDesc"]


def test_every_call__recorded_with_who_what_outcome(audited: TestClient) -> None:
    document = sentinel_document()
    created = post_encounter(audited, document)
    assert created.status_code == 201
    submission = created.json()["submission_id"]
    patient = next(ref for ref in created.json()["created"] if ref.startswith("Patient/"))
    resent = post_encounter(audited, document)
    assert resent.status_code == 200
    broken = json.loads(json.dumps(document))
    broken["patient"]["sex"] = "MRN-SENTINEL-7731"
    assert post_encounter(audited, broken).status_code == 422
    assert audited.post("/clinic/encounters", content=b"{}").status_code == 401
    reader = bearer(FHIR_READER_A)
    assert audited.get(f"/fhir/{patient}", headers=reader).status_code == 200
    assert audited.get("/fhir/Patient/nobody", headers=reader).status_code == 404
    assert (
        audited.get(f"/clinic/submissions/{submission}", headers=bearer(READER_A)).status_code
        == 200
    )

    events = _events(audited)
    summaries = [_summary(event) for event in reversed(events)]
    assert summaries == [
        ("create", "C", f"Submission/{submission}", "HTTP 201"),
        ("update", "U", f"Submission/{resent.json()['submission_id']}", "HTTP 200"),
        ("create", "C", "clinic/encounters", "HTTP 422"),
        ("read", "R", patient, "HTTP 200"),
        ("read", "R", "Patient/(withheld)", "HTTP 404"),
        ("read", "R", f"Submission/{submission}", "HTTP 200"),
    ]  # the 401 has no tenant, so no tenant's admin sees it
    first = events[-1]
    assert first["agent"][0]["who"]["identifier"]["value"].startswith("key:")
    assert first["outcome"] == "0"
    assert first["source"]["site"] == "clinic-a"
    assert int(first["entity"][0]["detail"][0]["valueString"]) > 10
    assert events[-3]["outcome"] == "4"
    for event in events:
        assert_model_equivalent(event)
    with audited.app.state.engine.connect() as connection:  # type: ignore[attr-defined]
        rows = connection.execute(select(audit)).mappings().all()
    stored = json.dumps([dict(row) for row in rows], default=str)
    assert any(row["tenant"] == "-" and row["outcome"] == "401" for row in rows)
    for sentinel in SENTINELS:
        assert sentinel not in stored
        assert sentinel not in json.dumps(events)


def test_fhir_answers__count_handed_over__equals_the_answer_parsed(audited: TestClient) -> None:
    created = post_encounter(audited, example("typical-ketamine-infusion")).json()["created"]
    patient = next(ref for ref in created if ref.startswith("Patient/"))
    reader = bearer(FHIR_READER_A)
    paths = [
        "/fhir/Observation?_count=3",
        f"/fhir/Observation?_count=500&patient={patient}&_include=Observation:patient",
        "/fhir/Observation?code=nothing-has-this",
        "/fhir/Observation?_summary=count&_count=2",
        f"/fhir/{patient}",
        f"/fhir/{patient}/_history",
        f"/fhir/{patient}/$everything?_count=5",
        "/fhir/Observation/_history?_count=4",
    ]
    expected = []
    for path in paths:
        reply = audited.get(path, headers=reader)
        assert reply.status_code == 200, path
        expected.append(answer_count(reply.json()))
    not_modified = audited.get(f"/fhir/{patient}", headers=reader | {"If-None-Match": 'W/"1"'})
    assert not_modified.status_code == 304
    events = _events(audited, query=f"?_count={len(paths) + 1}")
    counts = [int(event["entity"][0]["detail"][0]["valueString"]) for event in events]
    assert counts == [0, *reversed(expected)]
    assert expected[:4] == [3, expected[1], 1, 1]
    assert expected[1] > 3


def test_admin__sees_only_its_tenant__and_filters(audited: TestClient) -> None:
    assert post_encounter(audited, example("typical-ketamine-infusion")).status_code == 201
    assert post_encounter(audited, example("esketamine-session"), key=WRITER_B).status_code == 201
    assert audited.get("/fhir/Patient/x", headers=bearer(FHIR_READER_A)).status_code == 404
    mine = _events(audited)
    theirs = _events(audited, ADMIN_B)
    assert {event["source"]["site"] for event in mine} == {"clinic-a"}
    assert {event["source"]["site"] for event in theirs} == {"clinic-b"}
    assert len(theirs) == 1
    # The admin's own searches are audited as well (they show from the second one on).
    assert [e["outcome"] for e in _events(audited, query="?outcome=4")] == ["4"]
    writer = mine[-1]["agent"][0]["who"]["identifier"]["value"]
    by_agent = _events(audited, query=f"?agent={writer}")
    assert [e["subtype"][0]["code"] for e in by_agent] == ["create"]
    today = datetime.now(UTC).date()
    assert _events(audited, query=f"?date=lt{today}") == []
    tomorrow = today + timedelta(days=1)
    in_range = _events(audited, query=f"?date=ge{today}&date=lt{tomorrow}&outcome=0")
    assert len(in_range) >= 2


def test_admin__paging_with_next_links(audited: TestClient) -> None:
    for _ in range(5):
        audited.get("/fhir/Patient/x", headers=bearer(FHIR_READER_A))
    audited.app.state.audit_writer.flush()  # type: ignore[attr-defined]
    seen: list[tuple[str, str]] = []
    url: str | None = "/admin/AuditEvent?_count=2&outcome=4"
    while url:
        bundle = audited.get(url, headers=bearer(ADMIN_A)).json()
        seen += [(e["resource"]["recorded"], e["resource"]["id"]) for e in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)  # newest first
    # Ids and cursors are opaque: 32 random hex digits, no row number to count by.
    assert all(re.fullmatch("[0-9a-f]{32}", event_id) for _, event_id in seen)


@pytest.mark.parametrize(
    ("key", "query", "status"),
    [
        (WRITER_A, "", 403),
        (FHIR_READER_A, "", 403),
        (ADMIN_A, "?name=x", 400),
        (ADMIN_A, "?date=yesterday", 400),
        (ADMIN_A, "?outcome=2", 400),
        (ADMIN_A, "?_count=-1", 400),
        (ADMIN_A, "?_format=xml", 406),
    ],
)
def test_admin__refusals_as_operation_outcomes(
    audited: TestClient, key: str, query: str, status: int
) -> None:
    reply = audited.get(f"/admin/AuditEvent{query}", headers=bearer(key))
    assert reply.status_code == status
    assert reply.json()["resourceType"] == "OperationOutcome"


def test_push_worker_rows__shown_as_export_events(audited: TestClient) -> None:
    with audited.app.state.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            audit.insert().values(
                at=datetime.now(UTC),
                tenant="clinic-a",
                actor="worker-1",
                action="push-dead",
                object="outbox/7",
                count=3,
                outcome="EhrRejected",
            )
        )
    event = _events(audited)[0]
    assert event["type"]["code"] == "110106"
    assert event["action"] == "E"
    assert event["outcome"] == "8"
    assert event["entity"][0]["description"] == "outbox/7"
    assert_model_equivalent(event)


def test_admin__every_full_url__reads_its_event_in_its_tenant_only(audited: TestClient) -> None:
    assert post_encounter(audited, example("typical-ketamine-infusion")).status_code == 201
    audited.app.state.audit_writer.flush()  # type: ignore[attr-defined]
    bundle = audited.get("/admin/AuditEvent", headers=bearer(ADMIN_A)).json()
    assert bundle["entry"]
    for entry in bundle["entry"]:
        path = urlsplit(entry["fullUrl"]).path
        reply = audited.get(path, headers=bearer(ADMIN_A))
        assert reply.status_code == 200, reply.text
        assert reply.json() == entry["resource"]
        assert reply.json()["text"]["status"] == "generated"
        assert audited.get(path, headers=bearer(ADMIN_B)).status_code == 404
        assert audited.get(path, headers=bearer(FHIR_READER_A)).status_code == 403


@pytest.mark.parametrize("event_id", ["0" * 32, "not-an-id", "X" * 200])
def test_admin__read_of_an_unknown_event__404_outcome(audited: TestClient, event_id: str) -> None:
    reply = audited.get(f"/admin/AuditEvent/{event_id}", headers=bearer(ADMIN_A))
    assert reply.status_code == 404
    assert reply.json()["resourceType"] == "OperationOutcome"
