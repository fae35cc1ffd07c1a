"""API keys: loaded once, kept as hashes, required (with a scope) on every clinic endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter.api.app import create_app
from adapter.api.auth.callers import Caller, bearer_token
from adapter.api.auth.keys_file import load_api_keys
from adapter.errors import ConfigError
from tests.unit.adapter.api.conftest import (
    JSON,
    READER_A,
    WRITER_A,
    WRITER_B,
    bearer,
    example_bytes,
    post_encounter,
    running,
    settings_for,
    write_keys,
)


def _keys_error(tmp_path: Path, keys: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_api_keys(str(write_keys(tmp_path, keys)))
    return str(caught.value)


def test_keys_file__valid__authenticates_each_key_to_its_tenant(tmp_path: Path) -> None:
    keys = load_api_keys(str(write_keys(tmp_path)))
    assert len(keys) == 4
    writer = keys.authenticate(WRITER_A)
    assert writer is not None
    assert writer.tenant == "clinic-a"
    assert writer.scopes == {"clinic/encounters.write", "clinic/submissions.read"}
    assert keys.authenticate(WRITER_A + "x") is None
    assert keys.authenticate("") is None


def test_keys_file__in_memory__only_sha256_digests_are_kept(tmp_path: Path) -> None:
    keys = load_api_keys(str(write_keys(tmp_path)))
    assert WRITER_A not in repr(vars(keys))
    assert all(len(stored.digest) == 32 for stored in keys._keys)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"key": WRITER_A}, "must hold a JSON list"),
        ([{"key": "short", "tenant": "t", "scopes": ["clinic/*.read"]}], "entry 1 of 1: key"),
        ([{"key": WRITER_A, "scopes": ["clinic/*.read"]}], "entry 1 of 1: tenant"),
        ([{"key": WRITER_A, "tenant": "a b", "scopes": ["clinic/*.read"]}], "entry 1 of 1: tenant"),
        ([{"key": WRITER_A, "tenant": "t", "scopes": []}], "entry 1 of 1: scopes"),
        ([{"key": WRITER_A, "tenant": "t", "scopes": ["user/*.read"]}], "entry 1 of 1: scopes.0"),
        (
            [{"key": WRITER_A, "tenant": "t", "scopes": ["clinic/*.read"], "x": 1}],
            "entry 1 of 1: x",
        ),
    ],
)
def test_keys_file__bad_entry__config_error_naming_it_without_the_key(
    tmp_path: Path, keys: object, expected: str
) -> None:
    message = _keys_error(tmp_path, keys)
    assert "ADAPTER_API_KEYS_FILE" in message
    assert expected in message
    assert WRITER_A not in message


def test_keys_file__same_key_twice__refused(tmp_path: Path) -> None:
    entry = {"key": WRITER_A, "tenant": "t", "scopes": ["clinic/*.read"]}
    message = _keys_error(tmp_path, [entry, entry | {"tenant": "u"}])
    assert "entry 2 repeats the key of entry 1" in message
    assert WRITER_A not in message


def test_keys_file__not_json__config_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("[{")
    with pytest.raises(ConfigError, match="is not JSON"):
        load_api_keys(str(path))


@pytest.mark.parametrize(
    "scope",
    [
        "clinic/encounter.write",
        "clinic/encounters.read",
        "clinic/fhir.write",
        "system/Unknown.rs",
        "system/*.write",
        "admin/Patient.rs",
        "patient/*.rs",
    ],
)
def test_keys_file__scope_that_grants_nothing__refused_naming_entry_and_scope(
    tmp_path: Path, scope: str
) -> None:
    good = {"key": WRITER_A, "tenant": "t", "scopes": ["clinic/*.read"]}
    bad = {"key": READER_A, "tenant": "t", "scopes": ["clinic/encounters.write", scope]}
    message = _keys_error(tmp_path, [good, bad])
    assert f"entry 2 of 2: scopes.1: unknown scope {scope!r}" in message
    assert "clinic/encounters.write" in message, "the known scopes are listed"
    assert READER_A not in message


@pytest.mark.parametrize(
    "scope",
    ["clinic/*.*", "clinic/fhir.read", "system/*.cruds", "admin/*.rs", "admin/AuditEvent.read"],
)
def test_keys_file__scope_that_grants_something__accepted(tmp_path: Path, scope: str) -> None:
    entry = {"key": WRITER_A, "tenant": "t", "scopes": [scope]}
    assert len(load_api_keys(str(write_keys(tmp_path, [entry])))) == 1


def test_keys_file__unreadable__refused_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "keys.json"
    folder.mkdir()  # what Docker leaves when it mounts a file that does not exist
    with pytest.raises(ConfigError, match=r"keys\.json\): cannot be read"):
        load_api_keys(str(folder))


def test_create_app__bad_keys_file__refuses_to_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    settings = settings_for(tmp_path, api_keys_file=str(write_keys(bad, [{"key": "x"}])))
    with pytest.raises(ConfigError):
        create_app(settings)


@pytest.mark.parametrize(
    ("scopes", "needed", "granted"),
    [
        ({"clinic/encounters.write"}, "clinic/encounters.write", True),
        ({"clinic/encounters.write"}, "clinic/submissions.read", False),
        ({"clinic/*.write"}, "clinic/encounters.write", True),
        ({"clinic/*.write"}, "clinic/submissions.read", False),
        ({"clinic/submissions.*"}, "clinic/submissions.read", True),
        ({"clinic/*.*"}, "clinic/submissions.read", True),
        ({"clinic/encounters.read"}, "clinic/encounters.write", False),
    ],
)
def test_caller__scopes__exact_or_wildcard_grants(
    scopes: set[str], needed: str, granted: bool
) -> None:
    assert Caller("t", frozenset(scopes), "k").has_scope(needed) is granted


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
    ],
)
def test_bearer_token__header_forms(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_post__no_authorization__401_with_bearer_challenge(client: TestClient) -> None:
    reply = client.post(
        "/clinic/encounters",
        content=example_bytes("esketamine-session"),
        headers={"Content-Type": JSON},
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 401


@pytest.mark.parametrize("authorization", [f"Bearer {WRITER_A}x", f"Basic {WRITER_A}", "Bearer"])
def test_post__unknown_key_or_scheme__401_invalid_token(
    client: TestClient, authorization: str
) -> None:
    reply = client.post(
        "/clinic/encounters",
        content=b"{}",
        headers={"Content-Type": JSON, "Authorization": authorization},
    )
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_post__key_without_write_scope__403_naming_the_scope(client: TestClient) -> None:
    reply = post_encounter(client, example_bytes("esketamine-session"), key=READER_A)
    assert reply.status_code == 403
    assert 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"]
    assert "clinic/encounters.write" in reply.json()["detail"]


def test_post__wildcard_write_scope__accepted(client: TestClient) -> None:
    assert post_encounter(client, example_bytes("esketamine-session"), WRITER_B).status_code == 201


def test_get_submission__no_key__401(client: TestClient) -> None:
    assert client.get("/clinic/submissions/1").status_code == 401


def test_health_and_ready__no_key_needed(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


@pytest.fixture
def keyless_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from running(create_app(settings_for(tmp_path, api_keys_file="")))


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/clinic/encounters", {"content": b"{}"}),
        ("GET", "/clinic/submissions/1", {}),
    ],
)
def test_no_keys_file__every_protected_endpoint__401(
    keyless_client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    headers = {"Content-Type": JSON} | bearer(WRITER_A)
    reply = keyless_client.request(method, path, headers=headers, **kwargs)
    assert reply.status_code == 401
    assert keyless_client.get("/health").status_code == 200


@pytest.mark.parametrize("scope", ["system/*.rs", "system/Observation.rs", "system/*.read"])
def test_keys_file__smart_system_scopes__accepted(tmp_path: Path, scope: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"key": "k" * 40, "tenant": "clinic-a", "scopes": [scope]}]))
    caller = load_api_keys(str(path)).authenticate("k" * 40)
    assert caller is not None
    assert scope in caller.scopes


@pytest.mark.parametrize(
    "scope", ["system/*.", "system/observation.rs", "system/*.rx", "user/*.rs"]
)
def test_keys_file__malformed_scope__refused(tmp_path: Path, scope: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"key": "k" * 40, "tenant": "clinic-a", "scopes": [scope]}]))
    with pytest.raises(ConfigError):
        load_api_keys(str(path))
