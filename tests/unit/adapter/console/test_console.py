"""`/console` in-process: sign-in, the session cookie, CSRF, scopes, every page answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.adapter.api.conftest import WRITER_A, write_keys
from tests.unit.adapter.console.conftest import ADMIN, VIEWER, csrf_of, sign_in, signing_in

PAGES = (
    "",
    "/dead-letters",
    "/conflicts",
    "/submissions?encounter=E-1",
    "/subscriptions",
    "/reconcile",
    "/audit",
)


def test_sign_in__admin_key__session_cookie_httponly_strict_expiring(client: TestClient) -> None:
    answer = signing_in(client, ADMIN)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=3600" in cookie
    for path in PAGES:
        page = client.get(f"/console{path}")
        assert page.status_code == 200, path
        assert "key:" in page.text


def test_sign_in__clinic_key__refused_401(client: TestClient) -> None:
    assert sign_in(client, WRITER_A) == 401
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_action__without_csrf_token__refused_403(client: TestClient) -> None:
    assert sign_in(client, ADMIN) == 303
    answer = client.post("/console/dead-letters/replay", data={"id": "1"})
    assert answer.status_code == 403
    assert "CSRF" in answer.text


def test_action__without_its_scope__refused_403(client: TestClient) -> None:
    assert sign_in(client, VIEWER) == 303
    token = csrf_of(client.get("/console/dead-letters").text)
    answer = client.post("/console/dead-letters/replay", data={"id": "1", "csrf_token": token})
    assert answer.status_code == 403
    assert "admin/outbox.write" in answer.text


def test_sign_out__ends_the_session(client: TestClient) -> None:
    assert sign_in(client, ADMIN) == 303
    token = csrf_of(client.get("/console").text)
    client.post("/console/sign-out", data={"csrf_token": token})
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_keys_file__every_tenant_with_a_clinic_scope__refused(tmp_path: Path) -> None:
    from adapter.api.auth.keys_file import load_api_keys
    from adapter.errors import ConfigError

    good = {"key": ADMIN, "tenant": "*", "scopes": ["admin/*.*"]}
    assert len(load_api_keys(str(write_keys(tmp_path, [good])))) == 1
    bad = {"key": VIEWER, "tenant": "*", "scopes": ["admin/console.read", "clinic/*.*"]}
    with pytest.raises(ConfigError, match=r"entry 1 of 1: scopes\.1: a key of every tenant"):
        load_api_keys(str(write_keys(tmp_path, [bad])))
