"""The SMART Backend Services token endpoint, on a real uvicorn: Authlib gets a token, the
token reads like an API key, and every forged or replayed assertion is refused."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI

from adapter.api.app import create_app
from adapter.api.auth.smart_clients import load_smart_clients
from adapter.api.auth.token_requests import scope_within
from adapter.config import Settings
from adapter.errors import ConfigError
from tests.smart_clients import (
    ClientKey,
    authlib_token,
    client_entry,
    token_form,
    write_clients,
)
from tests.unit.adapter.api.conftest import example, post_encounter, running, serve, settings_for

CLIENT = "registry-client"
OTHER_TENANT_CLIENT = "clinic-b-client"
TIMEOUT = 30


@pytest.fixture(scope="module")
def rsa_key() -> ClientKey:
    return ClientKey.rsa()


@pytest.fixture(scope="module")
def ec_key() -> ClientKey:
    return ClientKey.ec()


def smart_settings(folder: Path, *keys: ClientKey, **overrides: Any) -> Settings:
    entries = [
        client_entry(
            CLIENT,
            "clinic-a",
            ["system/*.rs", "clinic/encounters.write", "system/Subscription.cruds"],
            *keys,
        ),
        client_entry(OTHER_TENANT_CLIENT, "clinic-b", ["system/*.rs"], *keys),
    ]
    return settings_for(
        folder,
        smart_clients_file=str(write_clients(folder, entries)),
        token_signing_key_file=str(folder / "keys" / "token-key.pem"),
        **overrides,
    )


@pytest.fixture
def smart_app(tmp_path: Path, rsa_key: ClientKey, ec_key: ClientKey) -> FastAPI:
    return create_app(smart_settings(tmp_path, rsa_key, ec_key))


@pytest.fixture
def base(smart_app: FastAPI) -> Iterator[str]:
    for port in serve(smart_app):
        yield f"http://127.0.0.1:{port}"


def ask(base: str, form: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}/auth/token", data=form, timeout=TIMEOUT)


def refusal(base: str, form: dict[str, str]) -> tuple[int, str, str]:
    reply = ask(base, form)
    body = reply.json()
    assert reply.headers["Cache-Control"] == "no-store"
    return reply.status_code, body["error"], body["error_description"]


def test_authlib_private_key_jwt__gets_a_token_that_reads_fhir(
    base: str, rsa_key: ClientKey
) -> None:
    token = authlib_token(f"{base}/auth/token", CLIENT, rsa_key, "system/Patient.rs")

    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "system/Patient.rs"
    assert 0 < token["expires_in"] <= 300
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(f"{base}/fhir/Patient", headers=headers, timeout=TIMEOUT).status_code == 200
    # Only what was granted: Encounter needs a scope the token was not given.
    encounters = requests.get(f"{base}/fhir/Encounter", headers=headers, timeout=TIMEOUT)
    assert encounters.status_code == 403


def test_es384_assertion__token_writes_as_its_client_tenant(
    smart_app: FastAPI, base: str, ec_key: ClientKey
) -> None:
    form = token_form(ec_key.assertion(CLIENT, f"{base}/auth/token"), "clinic/encounters.write")
    reply = ask(base, form)
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]

    sent = requests.post(
        f"{base}/clinic/encounters",
        json=example("typical-ketamine-infusion"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert sent.status_code == 201, sent.text


def test_token__tenant_is_the_clients__another_tenants_data_unseen(
    tmp_path: Path, rsa_key: ClientKey
) -> None:
    app = create_app(smart_settings(tmp_path, rsa_key))
    for client in running(app):
        assert post_encounter(client, example("typical-ketamine-infusion")).status_code == 201
        url = str(client.base_url) + "/auth/token"
        tokens = {}
        for client_id in (CLIENT, OTHER_TENANT_CLIENT):
            reply = client.post("/auth/token", data=token_form(rsa_key.assertion(client_id, url)))
            tokens[client_id] = reply.json()["access_token"]
        totals = {
            client_id: client.get(
                "/fhir/Patient", headers={"Authorization": f"Bearer {token}"}
            ).json()["total"]
            for client_id, token in tokens.items()
        }
    assert totals == {CLIENT: 1, OTHER_TENANT_CLIENT: 0}


def test_replayed_jti__refused_invalid_grant(base: str, rsa_key: ClientKey) -> None:
    form = token_form(rsa_key.assertion(CLIENT, f"{base}/auth/token"))
    assert ask(base, form).status_code == 200

    status, error, why = refusal(base, form)

    assert (status, error) == (400, "invalid_grant")
    assert "jti" in why


def test_replayed_jti__refused_by_another_process_on_the_same_store(
    tmp_path: Path, rsa_key: ClientKey
) -> None:
    settings = smart_settings(tmp_path, rsa_key)
    first, second = create_app(settings), create_app(settings)
    for one in running(first):
        url = str(one.base_url) + "/auth/token"
        form = token_form(rsa_key.assertion(CLIENT, url))
        assert one.post("/auth/token", data=form).status_code == 200
    for other in running(second):
        reply = other.post("/auth/token", data=form)
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("overrides", "status", "error", "named"),
    [
        ({"exp": 1_000_000}, 401, "invalid_client", "expired"),
        ({"kid": "no-such-key"}, 401, "invalid_client", "kid"),
        ({"aud": "https://elsewhere.example.org/token"}, 401, "invalid_client", "aud"),
        ({"alg": "RS256"}, 401, "invalid_client", "RS384"),
        ({"alg": "PS384"}, 401, "invalid_client", "RS384"),
        ({"iss": "nobody"}, 401, "invalid_client", "iss"),
        ({"sub": "someone-else"}, 401, "invalid_client", "sub"),
        ({"exp": 4_000_000_000}, 401, "invalid_client", "5 minutes"),
        ({"jti": ""}, 401, "invalid_client", "jti"),
    ],
)
def test_bad_assertion__refused_naming_why(
    base: str,
    rsa_key: ClientKey,
    overrides: dict[str, Any],
    status: int,
    error: str,
    named: str,
) -> None:
    assertion = rsa_key.assertion(CLIENT, f"{base}/auth/token", **overrides)

    got = refusal(base, token_form(assertion))

    assert got[:2] == (status, error)
    assert named in got[2]


def test_hmac_and_none_assertions__refused(base: str, rsa_key: ClientKey) -> None:
    import jwt

    claims = {"iss": CLIENT, "sub": CLIENT, "aud": f"{base}/auth/token", "exp": 4_000_000_000}
    public = rsa_key.public_jwk()["n"]
    for token in (
        jwt.encode(claims, public, algorithm="HS384", headers={"kid": rsa_key.kid}),
        jwt.encode(claims, "", algorithm="none", headers={"kid": rsa_key.kid}),
    ):
        assert refusal(base, token_form(token))[:2] == (401, "invalid_client")


def test_scope_beyond_the_clients__refused_invalid_scope(base: str, rsa_key: ClientKey) -> None:
    url = f"{base}/auth/token"
    for scope in ("system/*.cruds", "admin/AuditEvent.rs", "system/Patient.rs clinic/*.read", ""):
        got = refusal(base, token_form(rsa_key.assertion(CLIENT, url), scope))
        assert got[:2] == (400, "invalid_scope"), scope


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("grant_type", "authorization_code", "unsupported_grant_type"),
        ("client_assertion_type", "urn:other", "invalid_request"),
        ("client_assertion", "", "invalid_request"),
    ],
)
def test_malformed_request__rfc6749_error(
    base: str, rsa_key: ClientKey, field: str, value: str, error: str
) -> None:
    form = token_form(rsa_key.assertion(CLIENT, f"{base}/auth/token")) | {field: value}
    assert refusal(base, form)[:2] == (400, error)


def test_discovery_and_capability_statement__name_the_token_endpoint(base: str) -> None:
    config = requests.get(f"{base}/fhir/.well-known/smart-configuration", timeout=TIMEOUT).json()
    statement = requests.get(f"{base}/fhir/metadata", timeout=TIMEOUT).json()

    assert config["token_endpoint"] == f"{base}/auth/token"
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert config["grant_types_supported"] == ["client_credentials"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert "system/*.rs" in config["scopes_supported"]
    (oauth,) = statement["rest"][0]["security"]["extension"]
    assert oauth["extension"] == [{"url": "token", "valueUri": f"{base}/auth/token"}]


def test_discovery__names_the_subscription_scopes__a_token_for_them_manages_them(
    base: str, rsa_key: ClientKey
) -> None:
    config = requests.get(f"{base}/fhir/.well-known/smart-configuration", timeout=TIMEOUT).json()
    for scope in ("system/Subscription.cruds", "system/Subscription.rs"):
        assert scope in config["scopes_supported"]
    statement = requests.get(f"{base}/fhir/metadata", timeout=TIMEOUT).json()
    (subscription,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    assert "system/Subscription.*" in subscription["documentation"]

    url = f"{base}/auth/token"
    reply = ask(base, token_form(rsa_key.assertion(CLIENT, url), "system/Subscription.rs"))
    assert reply.status_code == 200, reply.text
    headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}
    listed = requests.get(f"{base}/fhir/Subscription", headers=headers, timeout=TIMEOUT)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    # A client holding only the wildcard type is not given subscriptions.
    refused = token_form(rsa_key.assertion(OTHER_TENANT_CLIENT, url), "system/Subscription.rs")
    assert refusal(base, refused)[:2] == (400, "invalid_scope")


def test_without_clients__no_token_endpoint_and_no_discovery(tmp_path: Path) -> None:
    for client in running(create_app(settings_for(tmp_path))):
        assert client.get("/fhir/.well-known/smart-configuration").status_code == 404
        assert client.post("/auth/token", data={}).status_code == 404
        assert "extension" not in client.get("/fhir/metadata").json()["rest"][0]["security"]


def test_signing_key__made_owner_only_once_and_kept_across_restarts(
    tmp_path: Path, rsa_key: ClientKey
) -> None:
    settings = smart_settings(tmp_path, rsa_key)
    first = create_app(settings)
    key_file = Path(settings.token_signing_key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for client in running(first):
        url = str(client.base_url) + "/auth/token"
        token = client.post("/auth/token", data=token_form(rsa_key.assertion(CLIENT, url)))
    for client in running(create_app(settings)):
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get("/fhir/Patient", headers=headers).status_code == 200


def test_forged_token_with_our_kid__refused(tmp_path: Path, rsa_key: ClientKey) -> None:
    app = create_app(smart_settings(tmp_path, rsa_key))
    forged = ClientKey("x", "ES384", ClientKey.ec().private).assertion(
        CLIENT, "x", kid=app.state.access_tokens.kid, tenant="clinic-a", scope="system/*.rs"
    )
    for client in running(app):
        reply = client.get("/fhir/Patient", headers={"Authorization": f"Bearer {forged}"})
    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"client_id": "c", "tenant": "t", "scopes": ["system/*.rs"]}, "exactly one of"),
        (
            {"client_id": "c", "tenant": "t", "scopes": ["system/*.rs"], "jwks": {"keys": []}},
            "jwks",
        ),
        ({"client_id": "c", "tenant": "bad tenant", "scopes": ["x"], "jwks_url": "k"}, "tenant"),
        (
            {"client_id": "c", "tenant": "t", "scopes": ["system/Nothing.zz"], "jwks_url": "k"},
            "scopes.0",
        ),
    ],
)
def test_clients_file__bad_entry__refused_naming_it(
    tmp_path: Path, entry: dict[str, Any], named: str
) -> None:
    path = write_clients(tmp_path, [entry])
    with pytest.raises(ConfigError) as caught:
        load_smart_clients(str(path))
    assert "ADAPTER_SMART_CLIENTS_FILE" in str(caught.value)
    assert "entry 1 of 1" in str(caught.value)
    assert named in str(caught.value)


def test_clients_file__same_client_twice__refused(tmp_path: Path, rsa_key: ClientKey) -> None:
    entry = client_entry(CLIENT, "clinic-a", ["system/*.rs"], rsa_key)
    with pytest.raises(ConfigError, match="entry 2 repeats"):
        load_smart_clients(str(write_clients(tmp_path, [entry, entry])))


@pytest.mark.parametrize(
    ("asked", "allowed", "within"),
    [
        ("system/Patient.rs", {"system/*.rs"}, True),
        ("system/Patient.r", {"system/*.read"}, True),
        ("system/*.rs", {"system/Patient.rs"}, False),
        ("system/Patient.cruds", {"system/*.rs"}, False),
        ("clinic/fhir.read", {"clinic/*.read"}, True),
        ("clinic/*.read", {"clinic/fhir.read"}, False),
        ("admin/AuditEvent.rs", {"system/*.*"}, False),
        ("system/Subscription.rs", {"system/*.*"}, False),
        ("system/Subscription.r", {"system/Subscription.*"}, True),
        ("system/Subscription.rs", {"system/Subscription.read"}, True),
        ("system/Subscription.u", {"system/Subscription.rs"}, False),
    ],
)
def test_scope_within(asked: str, allowed: set[str], within: bool) -> None:
    assert scope_within(asked, frozenset(allowed)) is within
