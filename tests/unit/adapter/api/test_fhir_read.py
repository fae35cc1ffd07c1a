"""`/fhir`: metadata, read, vread and history of what the clinic API stored, per tenant."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import select

from adapter.api.auth.callers import ApiKeys, Caller
from adapter.api.fhir.common import SERVED_TYPES, may_read
from adapter.store.schema import resources
from tests.unit.adapter.api.conftest import (
    READER_A,
    WRITER_A,
    WRITER_B,
    bearer,
    example,
    post_encounter,
)

FHIR_JSON = "application/fhir+json"
TYPICAL = "typical-ketamine-infusion"
SMART_ALL = "smart-system-reader-0123456789abcdef"
SMART_PATIENT = "smart-patient-reader-0123456789abcdef"
SMART_WRITE = "smart-writer-only-0123456789abcdef"


class _Keys(ApiKeys):
    """Keys with SMART `system/...` scopes, which the keys file does not accept (yet)."""

    def __init__(self, callers: dict[str, Caller]) -> None:
        super().__init__()
        self._callers = callers

    def authenticate(self, token: str) -> Caller | None:
        return self._callers.get(token)


def _caller(*scopes: str, tenant: str = "clinic-a") -> Caller:
    return Caller(tenant, frozenset(scopes), "testkey0")


@pytest.fixture
def smart(app: FastAPI) -> None:
    """Swap in keys holding SMART scopes (the conftest's own keys stay usable too)."""
    app.state.api_keys = _Keys(
        {
            WRITER_A: _caller("clinic/encounters.write"),
            SMART_ALL: _caller("system/*.rs"),
            SMART_PATIENT: _caller("system/Patient.rs"),
            SMART_WRITE: _caller("system/*.cud"),
            READER_A: _caller("clinic/submissions.read"),
        }
    )


def _get(
    client: TestClient, path: str, key: str | None = WRITER_B, **headers: str
) -> httpx2.Response:
    sent = (bearer(key) if key else {}) | headers
    return client.get(path, headers=sent)


def _ingest(client: TestClient, document: dict[str, Any], key: str = WRITER_A) -> dict[str, Any]:
    reply = post_encounter(client, document, key)
    assert reply.status_code in (200, 201)
    body: dict[str, Any] = reply.json()
    return body


def _first(refs: list[str], resource_type: str) -> str:
    return next(ref for ref in refs if ref.startswith(f"{resource_type}/"))


def _stored(app: FastAPI, ref: str) -> dict[str, Any]:
    resource_type, logical_id = ref.split("/")
    with app.state.engine.connect() as conn:
        content = conn.execute(
            select(resources.c.content).where(
                resources.c.resource_type == resource_type, resources.c.logical_id == logical_id
            )
        ).scalar_one()
    stored: dict[str, Any] = json.loads(content)
    return stored


def _no_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key != "meta"}


def _outcome(reply: httpx2.Response, status: int, code: str) -> None:
    assert reply.status_code == status
    assert reply.headers["content-type"] == FHIR_JSON
    body = reply.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["code"] == code
    assert "Traceback" not in reply.text


# Tenant B's conftest key holds `clinic/*.read`, which grants `clinic/fhir.read`: the tests
# below ingest as tenant B and read back with the same key unless they say otherwise.
@pytest.fixture
def created(client: TestClient) -> list[str]:
    refs: list[str] = _ingest(client, example(TYPICAL), WRITER_B)["created"]
    return refs


# --- metadata ---------------------------------------------------------------------------


def test_metadata__open__a_valid_r4_capability_statement(client: TestClient) -> None:
    reply = client.get("/fhir/metadata")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == FHIR_JSON
    body = reply.json()
    statement = CapabilityStatement.model_validate(body)
    assert statement.status == "active"
    assert statement.kind == "instance"
    assert statement.fhirVersion == "4.0.1"
    assert "json" in body["format"]
    rest = body["rest"][0]
    assert rest["mode"] == "server"
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    served = [r for r in rest["resource"] if r["type"] not in ("SearchParameter", "Subscription")]
    assert sorted(r["type"] for r in served) == sorted(SERVED_TYPES)
    for resource in served:
        codes = [i["code"] for i in resource["interaction"]]
        assert codes == ["read", "vread", "history-instance", "history-type", "search-type"]
    assert body["implementation"]["url"].endswith("/fhir")
    (subscription,) = [r for r in rest["resource"] if r["type"] == "Subscription"]
    topics = [e["valueCanonical"] for e in subscription["extension"]]
    assert len(topics) == 4
    assert [o["name"] for o in subscription["operation"]] == ["status", "events"]


def test_metadata__every_type_written_by_an_example_is_served(
    client: TestClient, created: list[str]
) -> None:
    assert {ref.split("/")[0] for ref in created} <= set(SERVED_TYPES)


# --- read -------------------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Patient", "Encounter", "Observation"])
def test_read__ingested_resource__stored_content_plus_version_meta(
    app: FastAPI, client: TestClient, created: list[str], resource_type: str
) -> None:
    ref = _first(created, resource_type)
    reply = _get(client, f"/fhir/{ref}")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == FHIR_JSON
    assert reply.headers["ETag"] == 'W/"1"'
    assert reply.headers["Last-Modified"].endswith(" GMT")
    body = reply.json()
    meta = body.pop("meta")
    stored = _stored(app, ref)
    stored_meta = stored.pop("meta", {})
    assert body == stored
    assert meta["versionId"] == "1"
    assert meta["lastUpdated"].endswith("Z")
    assert {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")} == {
        k: v for k, v in stored_meta.items() if k not in ("versionId", "lastUpdated")
    }


def test_read__if_none_match_current__304_without_body(
    client: TestClient, created: list[str]
) -> None:
    ref = _first(created, "Patient")
    etag = _get(client, f"/fhir/{ref}").headers["ETag"]
    reply = _get(client, f"/fhir/{ref}", **{"If-None-Match": etag})
    assert reply.status_code == 304
    assert reply.content == b""
    assert reply.headers["ETag"] == etag
    stale = _get(client, f"/fhir/{ref}", **{"If-None-Match": 'W/"7"'})
    assert stale.status_code == 200


def test_read__if_modified_since_later__304(client: TestClient, created: list[str]) -> None:
    ref = _first(created, "Patient")
    modified = _get(client, f"/fhir/{ref}").headers["Last-Modified"]
    assert _get(client, f"/fhir/{ref}", **{"If-Modified-Since": modified}).status_code == 304
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert _get(client, f"/fhir/{ref}", **{"If-Modified-Since": earlier}).status_code == 200


def test_changed_resend__version_2_read_vread_1_old_history_newest_first(
    app: FastAPI, client: TestClient, created: list[str]
) -> None:
    document = example(TYPICAL)
    document["vitals"][1]["heart_rate"]["value"] += 4
    updated = _ingest(client, document, WRITER_B)["updated"]
    assert len(updated) == 1
    ref = updated[0]
    old = _get(client, f"/fhir/{ref}/_history/1").json()
    current = _get(client, f"/fhir/{ref}")
    assert current.headers["ETag"] == 'W/"2"'
    assert current.json()["meta"]["versionId"] == "2"
    assert old["meta"]["versionId"] == "1"
    stored = _no_meta(_stored(app, ref))
    assert _no_meta(current.json()) == stored
    assert _no_meta(old) != stored
    vread_2 = _get(client, f"/fhir/{ref}/_history/2")
    assert vread_2.json() == current.json()
    assert vread_2.headers["ETag"] == 'W/"2"'
    bundle = _get(client, f"/fhir/{ref}/_history")
    assert bundle.status_code == 200
    body = bundle.json()
    Bundle.model_validate(body)
    assert body["type"] == "history"
    assert body["total"] == 2
    assert [e["resource"]["meta"]["versionId"] for e in body["entry"]] == ["2", "1"]
    assert [e["response"]["status"] for e in body["entry"]] == ["200 OK", "201 Created"]
    assert all(e["fullUrl"].endswith(f"/fhir/{ref}") for e in body["entry"])
    assert body["entry"][1]["resource"] == old


def test_reading_left_out__observation_410_and_history_shows_the_deletion(
    client: TestClient, created: list[str]
) -> None:
    document = example(TYPICAL)
    del document["vitals"][3]
    deleted = _ingest(client, document, WRITER_B)["deleted"]
    assert deleted
    ref = deleted[0]
    _outcome(_get(client, f"/fhir/{ref}"), 410, "deleted")
    _outcome(_get(client, f"/fhir/{ref}/_history/2"), 410, "deleted")
    assert _get(client, f"/fhir/{ref}/_history/1").status_code == 200
    body = _get(client, f"/fhir/{ref}/_history").json()
    Bundle.model_validate(body)
    newest = body["entry"][0]
    assert "resource" not in newest
    assert newest["request"] == {"method": "DELETE", "url": ref}
    assert newest["response"]["status"].startswith("204")
    assert newest["response"]["etag"] == 'W/"2"'
    assert body["entry"][1]["resource"]["meta"]["versionId"] == "1"


# --- tenants, keys, scopes --------------------------------------------------------------


def test_read__tenant_b_reading_tenant_a__404_like_a_missing_one(client: TestClient) -> None:
    refs = _ingest(client, example(TYPICAL), WRITER_A)["created"]
    for ref in (_first(refs, "Patient"), _first(refs, "Observation")):
        for path in (f"/fhir/{ref}", f"/fhir/{ref}/_history/1", f"/fhir/{ref}/_history"):
            reply = _get(client, path, WRITER_B)
            _outcome(reply, 404, "not-found")
            missing = _get(client, path.replace(ref.split("/")[1], "no-such-id"), WRITER_B)
            assert reply.json() == missing.json()


def test_smart_scope__other_tenant_404_everywhere(
    app: FastAPI, client: TestClient, created: list[str], smart: None
) -> None:
    # `created` belongs to clinic-b; SMART_ALL is a clinic-a key.
    for ref in (_first(created, "Patient"), _first(created, "Observation")):
        for path in (f"/fhir/{ref}", f"/fhir/{ref}/_history/1", f"/fhir/{ref}/_history"):
            _outcome(_get(client, path, SMART_ALL), 404, "not-found")


def test_smart_scopes__type_scope_reads_only_its_type(client: TestClient, smart: None) -> None:
    refs = _ingest(client, example(TYPICAL))["created"]
    patient, encounter = _first(refs, "Patient"), _first(refs, "Encounter")
    assert _get(client, f"/fhir/{patient}", SMART_ALL).status_code == 200
    assert _get(client, f"/fhir/{encounter}", SMART_ALL).status_code == 200
    assert _get(client, f"/fhir/{patient}", SMART_PATIENT).status_code == 200
    _outcome(_get(client, f"/fhir/{encounter}", SMART_PATIENT), 403, "forbidden")
    _outcome(_get(client, f"/fhir/{patient}", SMART_WRITE), 403, "forbidden")
    _outcome(_get(client, f"/fhir/{patient}", READER_A), 403, "forbidden")


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (("system/*.rs",), True),
        (("system/Patient.rs",), True),
        (("system/*.read",), True),
        (("system/Patient.read",), True),
        (("system/Patient.r",), True),
        (("system/*.*",), True),
        (("system/*.cruds",), True),
        (("clinic/fhir.read",), True),
        (("clinic/*.read",), True),
        (("clinic/*.*",), True),
        (("system/Encounter.rs",), False),
        (("system/*.cud",), False),
        (("system/*.sr",), False),
        (("system/*.write",), False),
        (("user/*.rs", "patient/*.read"), False),
        (("clinic/fhir.write", "clinic/submissions.read"), False),
    ],
)
def test_may_read__scopes(scopes: tuple[str, ...], allowed: bool) -> None:
    assert may_read(_caller(*scopes), "Patient") is allowed


def test_read__no_key__401_with_challenge(client: TestClient, created: list[str]) -> None:
    ref = _first(created, "Patient")
    reply = _get(client, f"/fhir/{ref}", None)
    _outcome(reply, 401, "login")
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    unknown = _get(client, f"/fhir/{ref}", "not-a-known-key-0123456789abcdef")
    _outcome(unknown, 401, "login")
    assert unknown.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_read__key_without_scope__403_with_challenge(
    client: TestClient, created: list[str]
) -> None:
    reply = _get(client, f"/fhir/{_first(created, 'Patient')}", READER_A)
    _outcome(reply, 403, "forbidden")
    assert 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"]


# --- refused requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient/has_underscore",
        "/fhir/Patient/" + "a" * 65,
        "/fhir/Patient/%C3%A9t%C3%A9",
        "/fhir/Patient/a%20b",
        "/fhir/Patient/ok-id/_history/bad_vid",
        "/fhir/Patient/bad!id/_history",
    ],
)
def test_bad_id__400(client: TestClient, path: str) -> None:
    _outcome(_get(client, path), 400, "invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient/no-such-id",
        "/fhir/Patient/no-such-id/_history",
        "/fhir/Patient/no-such-id/_history/1",
        "/fhir/Bundle/some-id",
        "/fhir/NotAType/some-id",
        "/fhir/NotAType",
        "/fhir/Patient/x/y/z",
    ],
)
def test_unknown__404(client: TestClient, path: str) -> None:
    _outcome(_get(client, path), 404, "not-found")


def test_vread__unknown_version__404(client: TestClient, created: list[str]) -> None:
    ref = _first(created, "Patient")
    for vid in ("2", "0", "abc", "9" * 20):
        _outcome(_get(client, f"/fhir/{ref}/_history/{vid}"), 404, "not-found")


def test_write_methods__405_read_only(client: TestClient, created: list[str]) -> None:
    ref = _first(created, "Patient")
    reply = client.put(f"/fhir/{ref}", json={}, headers=bearer(WRITER_B))
    _outcome(reply, 405, "not-supported")
    assert reply.headers["Allow"] == "GET"
    _outcome(client.delete(f"/fhir/{ref}", headers=bearer(WRITER_B)), 405, "not-supported")


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("?_format=json", None, FHIR_JSON),
        ("?_format=application/json", None, "application/json"),
        ("?_format=application/fhir%2Bjson", None, FHIR_JSON),
        ("?_format=application/fhir+json", None, FHIR_JSON),
        ("", "application/json", "application/json"),
        ("", "application/fhir+json", FHIR_JSON),
        ("", "text/html, */*;q=0.8", FHIR_JSON),
        ("", "application/json;q=0.5, application/fhir+json", FHIR_JSON),
    ],
)
def test_format__json_honoured(
    client: TestClient, created: list[str], query: str, accept: str | None, expected: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    for path in (f"/fhir/{_first(created, 'Patient')}", "/fhir/metadata"):
        reply = _get(client, path + query, **headers)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == expected


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("?_format=xml", None),
        ("?_format=application/fhir%2Bxml", None),
        ("?_format=ttl", None),
        ("", "application/fhir+xml"),
        ("", "text/html"),
        ("", "application/json;q=0"),
    ],
)
def test_format__not_json__406(
    client: TestClient, created: list[str], query: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    for path in (f"/fhir/{_first(created, 'Patient')}", "/fhir/metadata"):
        _outcome(_get(client, path + query, **headers), 406, "not-supported")


def test_store_not_migrated__503_outcome_with_retry_after(
    app: FastAPI, client: TestClient, created: list[str]
) -> None:
    app.state.background.migrated.clear()
    reply = _get(client, f"/fhir/{_first(created, 'Patient')}")
    _outcome(reply, 503, "transient")
    assert reply.headers["Retry-After"]


def test_logs__never_an_id_or_content(
    client: TestClient, created: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    document = example(TYPICAL)
    with caplog.at_level(logging.DEBUG):
        for ref in created:
            _get(client, f"/fhir/{ref}")
            _get(client, f"/fhir/{ref}/_history")
            _get(client, f"/fhir/{ref}/_history/1")
    # The adapter's own records: the test client logs each URL it requests, ids included.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("adapter"))
    assert "FHIR API" in text
    for ref in created:
        assert ref.split("/")[1] not in text
    assert document["patient"]["family_name"] not in text
    assert document["patient"]["mrn"] not in text
