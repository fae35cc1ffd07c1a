"""A running app with the clinic keys and three operators' keys: an admin and a viewer of
clinic-a, and an admin of every tenant; signing in through the console's own form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.unit.adapter.api.conftest import KEYS, running, settings_for, write_keys

ADMIN = "console-admin-of-clinic-a-0123456789abcdef"
VIEWER = "console-viewer-of-clinic-a-0123456789abcdef"
OPERATOR_OF_ALL = "console-admin-of-every-tenant-0123456789abcdef"
OPERATOR_KEYS = [
    {"key": ADMIN, "tenant": "clinic-a", "scopes": ["admin/*.*"]},
    {"key": VIEWER, "tenant": "clinic-a", "scopes": ["admin/console.read"]},
    {"key": OPERATOR_OF_ALL, "tenant": "*", "scopes": ["admin/*.*"]},
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from adapter.api.app import create_app

    (tmp_path / "keys").mkdir()
    keys_file = write_keys(tmp_path / "keys", [*KEYS, *OPERATOR_KEYS])
    yield from running(create_app(settings_for(tmp_path, api_keys_file=str(keys_file))))


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def signing_in(client: TestClient, credential: str) -> httpx2.Response:
    """The answer to the sign-in form sent with `credential` (and the form's CSRF token)."""
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"credential": credential, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )


def sign_in(client: TestClient, credential: str) -> int:
    return signing_in(client, credential).status_code
