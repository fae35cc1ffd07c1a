"""`POST /clinic/encounters`: accepted, resent, changed, and every way of being refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from adapter.api.app import create_app
from adapter.api.clinic import encounters
from adapter.runtime import mapping_context
from adapter.store.schema import outbox, resources
from mappings.common.bundle import resource_identity
from mappings.common.serialize import dumps
from mappings.contract import parse_submission
from mappings.encounter.submission import map_submission
from tests.large_documents import with_readings
from tests.unit.adapter.api.conftest import (
    JSON,
    WRITER_A,
    WRITER_B,
    bearer,
    example,
    example_bytes,
    post_encounter,
    running,
    settings_for,
)
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES


def _mapped(app: FastAPI, document: dict[str, Any]) -> dict[str, bytes]:
    """What the adapter makes of `document` for tenant clinic-a: reference -> JSON."""
    ctx = mapping_context(app.state.settings, "clinic-a")
    out: dict[str, bytes] = {}
    for res in map_submission(parse_submission(json.dumps(document).encode()), ctx):
        ident = resource_identity(res, ctx)
        out[f"{ident.resource_type}/{ident.id}"] = dumps(res)
    return out


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_post__shared_example__201_with_references_and_location(
    app: FastAPI, client: TestClient, name: str
) -> None:
    reply = post_encounter(client, example_bytes(name))
    assert reply.status_code == 201
    body = reply.json()
    assert body["encounter_id"] == example(name)["encounter_id"]
    assert body["status"] == "stored"
    assert body["status_url"] == f"/clinic/submissions/{body['submission_id']}"
    assert reply.headers["Location"] == body["status_url"]
    assert reply.headers["content-type"] == JSON
    assert sorted(body["created"]) == sorted(_mapped(app, example(name)))
    assert body["updated"] == body["unchanged"] == body["deleted"] == []


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_post__identical_resend__200_nothing_created_or_updated(
    client: TestClient, name: str
) -> None:
    first = post_encounter(client, example_bytes(name)).json()
    reply = post_encounter(client, example_bytes(name))
    assert reply.status_code == 200
    body = reply.json()
    assert body["created"] == body["updated"] == body["deleted"] == []
    assert sorted(body["unchanged"]) == sorted(first["created"])
    assert body["status"] == "unchanged"
    assert body["submission_id"] != first["submission_id"]


def test_post__changed_resend__200_with_exactly_the_changed_resources_updated(
    app: FastAPI, client: TestClient
) -> None:
    document = example("typical-ketamine-infusion")
    post_encounter(client, document)
    changed = json.loads(json.dumps(document))
    changed["vitals"][1]["heart_rate"]["value"] += 4
    before, after = _mapped(app, document), _mapped(app, changed)
    expected = [ref for ref in after if after[ref] != before[ref]]
    reply = post_encounter(client, changed)
    assert reply.status_code == 200
    body = reply.json()
    assert body["updated"] == expected
    assert len(expected) == 1
    assert expected[0].startswith("Observation/")
    assert body["created"] == body["deleted"] == []
    assert body["status"] == "stored"


def test_post__resend_without_a_reading__200_with_it_deleted(client: TestClient) -> None:
    document = example("typical-ketamine-infusion")
    post_encounter(client, document)
    del document["vitals"][3]
    body = post_encounter(client, document).json()
    assert body["deleted"]
    assert all(ref.startswith("Observation/") for ref in body["deleted"])


def test_post__same_encounter_from_two_tenants__stored_apart(
    app: FastAPI, client: TestClient
) -> None:
    assert post_encounter(client, example_bytes("esketamine-session")).status_code == 201
    assert post_encounter(client, example_bytes("esketamine-session"), WRITER_B).status_code == 201
    with app.state.engine.connect() as conn:
        tenants = conn.execute(select(resources.c.tenant).distinct()).scalars().all()
    assert sorted(tenants) == ["clinic-a", "clinic-b"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_post__not_application_json__415_problem(
    client: TestClient, content_type: str | None
) -> None:
    headers = bearer(WRITER_A) | ({"Content-Type": content_type} if content_type else {})
    reply = client.post(
        "/clinic/encounters", content=example_bytes("esketamine-session"), headers=headers
    )
    assert reply.status_code == 415
    assert reply.headers["content-type"] == "application/problem+json"


def test_post__json_with_utf8_charset__accepted(client: TestClient) -> None:
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    reply = post_encounter(client, example_bytes("esketamine-session"), headers=headers)
    assert reply.status_code == 201


def test_post__body_over_limit__413_problem(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, max_body_bytes=1000))
    for client in running(app):
        reply = post_encounter(client, example_bytes("typical-ketamine-infusion"))
        assert reply.status_code == 413
        assert reply.headers["content-type"] == "application/problem+json"
        with app.state.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(resources)).scalar_one() == 0


def _stored_rows(app: FastAPI) -> tuple[int, int]:
    with app.state.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(resources)).scalar_one()
        queued = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    return count, queued


def test_post__readings_at_the_default_limit__201__one_more__422_naming_vitals(
    app: FastAPI, client: TestClient
) -> None:
    assert post_encounter(client, with_readings(1000, "ENC-AT-LIMIT")).status_code == 201
    before = _stored_rows(app)
    reply = post_encounter(client, with_readings(1001, "ENC-OVER-LIMIT"))
    assert reply.status_code == 422
    [error] = reply.json()["errors"]
    assert error["field"] == "vitals"
    assert "at most 1000 readings" in error["message"]
    assert "this one has 1001" in error["message"]
    assert _stored_rows(app) == before  # refused whole; what was accepted before stays


def test_post__readings_limit_is_the_setting__a_resend_over_it_keeps_the_stored_version(
    tmp_path: Path,
) -> None:
    app = create_app(settings_for(tmp_path, max_readings_per_document=3))
    for client in running(app):
        assert post_encounter(client, with_readings(3, "ENC-1")).status_code == 201
        before = _stored_rows(app)
        reply = post_encounter(client, with_readings(4, "ENC-1"))
        assert reply.status_code == 422
        assert reply.json()["errors"][0]["field"] == "vitals"
        assert "at most 3 readings" in reply.json()["errors"][0]["message"]
        assert _stored_rows(app) == before


def test_post__several_invalid_fields__422_listing_every_one(
    app: FastAPI, client: TestClient
) -> None:
    document = example("typical-ketamine-infusion")
    document["vitals"][1]["diastolic"]["value"] = 500
    document["vitals"][2]["heart_rate"]["unit"] = "bpm"
    document["patient"]["sex"] = "F"
    document["surprise"] = True
    reply = post_encounter(client, document)
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["type"].endswith(":invalid-document")
    assert problem["status"] == 422
    fields = {error["field"] for error in problem["errors"]}
    assert {
        "vitals[1].diastolic.value",
        "vitals[2].heart_rate.unit",
        "patient.sex",
        "surprise",
    } <= fields
    assert all(error["message"] for error in problem["errors"])
    with app.state.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"encounter_id": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"encounter_id": "\xff"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"a":' * 990 + b"1" + b"}" * 990, "nested too deeply"),
        (b'{"encounter_id": ' + b"9" * 5000 + b"}", "too many digits"),
    ],
)
def test_post__not_utf8_json__400_problem_at_root(
    client: TestClient, body: bytes, message: str
) -> None:
    reply = post_encounter(client, body)
    assert reply.status_code == 400
    problem = reply.json()
    assert problem["type"].endswith(":malformed-document")
    assert [error["field"] for error in problem["errors"]] == ["$"]
    assert message in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "field", "status", "kind"),
    [
        (b'{"encounter_id": "E-1", "encounter_id": "E-2"}', "encounter_id", 400, "malformed"),
        (
            b'{"encounter_id": "E-1", "vitals": [{"spo2": {"value": NaN}}]}',
            "vitals[0].spo2.value",
            400,
            "malformed",
        ),
        (
            b'{"encounter_id": "E-1", "vitals": [{"spo2": {"value": -Infinity}}]}',
            "vitals[0].spo2.value",
            400,
            "malformed",
        ),
        (rb'{"encounter_id": "\ud800"}', "encounter_id", 400, "malformed"),
        (b"[]", "$", 422, "invalid"),
        (b'"just a string"', "$", 422, "invalid"),
    ],
)
def test_post__unsound_json_400__not_a_contract_document_422__naming_the_place(
    client: TestClient, body: bytes, field: str, status: int, kind: str
) -> None:
    """Unsound JSON (the bytes' fault) is 400; sound JSON that is no document is 422."""
    reply = post_encounter(client, body)
    assert reply.status_code == status
    assert reply.json()["type"].endswith(f":{kind}-document")
    assert field in {error["field"] for error in reply.json()["errors"]}


def test_post__store_not_migrated_yet__503_retry_after(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    client = TestClient(app)  # no lifespan: the background migration never ran
    reply = post_encounter(client, example_bytes("esketamine-session"))
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "2"


def test_post__database_error__503_problem_without_its_message(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise OperationalError("INSERT ... MRN-004211", {}, Exception("disk I/O error"))

    monkeypatch.setattr(encounters, "ingest_encounter", broken)
    reply = post_encounter(client, example_bytes("typical-ketamine-infusion"))
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert "MRN" not in reply.text
    assert "I/O" not in reply.text
