"""Error answers: unexpected failures and unknown routes never show internals."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api.clinic import encounters
from tests.unit.adapter.api.conftest import WRITER_A, bearer, example_bytes, post_encounter


def test_unexpected_exception__bare_500_problem_and_only_its_class_logged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret detail: MRN-004211")

    monkeypatch.setattr(encounters, "ingest_encounter", broken)
    with caplog.at_level(logging.DEBUG):
        reply = post_encounter(client, example_bytes("typical-ketamine-infusion"))
    assert reply.status_code == 500
    assert reply.headers["content-type"] == "application/problem+json"
    request_id = reply.headers["x-request-id"]
    assert reply.json() == {
        "type": "urn:ketamine-fhir-adapter:problem:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": f"the adapter failed to handle the request (request id {request_id})",
        "request_id": request_id,
    }
    assert f"unhandled RuntimeError in POST /clinic/encounters (request {request_id})" in (
        caplog.text
    )
    assert "MRN-004211" not in caplog.text
    assert "Traceback" not in caplog.text


def test_unexpected_exception_on_fhir_faces__bare_operation_outcome(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/admin/broken/{identifier}")
    def broken(identifier: str) -> None:
        raise KeyError(f"secret detail: {identifier}")

    with caplog.at_level(logging.DEBUG):
        reply = TestClient(app).get("/admin/broken/MRN-004211")
    assert reply.status_code == 500
    assert reply.headers["content-type"] == "application/fhir+json"
    request_id = reply.headers["x-request-id"]
    issue = reply.json()["issue"][0]
    assert issue["code"] == "exception"
    assert issue["diagnostics"].endswith(f"(request id {request_id})")
    ours = "".join(r.getMessage() for r in caplog.records if r.name.startswith("adapter"))
    assert "unhandled KeyError" in ours
    assert "MRN-004211" not in reply.text + ours
    assert "Traceback" not in reply.text + caplog.text


def test_unknown_path__404_problem(client: TestClient) -> None:
    reply = client.get("/clinic/nothing-here", headers=bearer(WRITER_A))
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 404


def test_wrong_method__405_problem_with_allow(client: TestClient) -> None:
    reply = client.get("/clinic/encounters", headers=bearer(WRITER_A))
    assert reply.status_code == 405
    assert reply.headers["content-type"] == "application/problem+json"
    assert "POST" in reply.headers["Allow"]


def test_request_validation_error__problem_without_the_input(app: FastAPI) -> None:
    @app.get("/numbers/{n}")
    def number(n: int) -> int:
        return n

    reply = TestClient(app).get("/numbers/MRN-004211")
    assert reply.status_code == 422
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["errors"][0]["field"] == "path.n"
    assert "MRN-004211" not in reply.text
