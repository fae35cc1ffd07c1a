"""`/console` in-process: sign-in, the session cookie, CSRF, scopes, every page answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.adapter.api.conftest import KEYS, WRITER_A, running, settings_for, write_keys

ADMIN = "console-admin-of-clinic-a-0123456789abcdef"
VIEWER = "console-viewer-of-clinic-a-0123456789abcdef"
PAGES = ("", "/dead-letters", "/conflicts", "/submissions?encounter=E-1", "/reconcile", "/audit")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from adapter.api.app import create_app

    keys = [
        *KEYS,
        {"key": ADMIN, "tenant": "clinic-a", "scopes": ["admin/*.*"]},
        {"key": VIEWER, "tenant": "clinic-a", "scopes": ["admin/console.read"]},
    ]
    (tmp_path / "keys").mkdir()
    settings = settings_for(tmp_path, api_keys_file=str(write_keys(tmp_path / "keys", keys)))
    yield from running(create_app(settings))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, credential: str) -> int:
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"credential": credential, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    return answer.status_code


def test_sign_in__admin_key__session_cookie_httponly_strict_expiring(client: TestClient) -> None:
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"credential": ADMIN, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
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
    from adapter.api.keys_file import load_api_keys
    from adapter.errors import ConfigError

    good = {"key": ADMIN, "tenant": "*", "scopes": ["admin/*.*"]}
    assert len(load_api_keys(str(write_keys(tmp_path, [good])))) == 1
    bad = {"key": VIEWER, "tenant": "*", "scopes": ["admin/console.read", "clinic/*.*"]}
    with pytest.raises(ConfigError, match=r"entry 1 of 1: scopes\.1: a key of every tenant"):
        load_api_keys(str(write_keys(tmp_path, [bad])))
