"""Outbound auth: each kind's headers, token caching and refresh, SMART client assertions."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.config import Settings
from adapter.ehr.assertion import SigningKey, load_signing_key
from adapter.ehr.auth import BasicAuth, BearerAuth, EhrAuth, TokenAuth, auth_from_settings
from adapter.ehr.client import FhirClient
from adapter.ehr.http import new_session
from adapter.errors import ConfigError, EhrAuthFailed, EhrBadResponse, EhrUnavailable
from tests.unit.adapter.ehr.support import BASE, TOKEN_URL, FakeClock

PATIENT = {"resourceType": "Patient", "id": "p1"}
SECRET = "s3cret-value"


def _client(settings: Settings, clock: FakeClock) -> FhirClient:
    return FhirClient.from_settings(settings, clock=clock, sleep=clock.sleep)


def _settings(**values: object) -> Settings:
    return Settings(ehr_base_url=BASE, **values)  # type: ignore[arg-type]


def _authorization(ehr: responses.RequestsMock, call: int = -1) -> str | None:
    found = ehr.calls[call].request.headers.get("Authorization")
    return found.decode() if isinstance(found, bytes) else found


def _form(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body
    assert isinstance(body, str)
    return {k: v[0] for k, v in parse_qs(body).items()}


def _token_reply(token: str, expires_in: int = 300) -> dict[str, object]:
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}


def _client_credentials(**extra: object) -> Settings:
    values: dict[str, object] = {
        "ehr_auth": "client_credentials",
        "ehr_auth_client_id": "adapter",
        "ehr_auth_client_secret": SECRET,
        "ehr_auth_token_url": TOKEN_URL,
    }
    return _settings(**(values | extra))


def _serve_tokens(ehr: responses.RequestsMock, *tokens: str) -> None:
    for token in tokens:
        ehr.post(TOKEN_URL, json=_token_reply(token))


# --- static kinds ---


def test_none__request__no_authorization_header(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    _client(_settings(), clock).read("Patient", "p1")
    assert _authorization(ehr) is None


def test_basic__request__basic_header_with_user_and_password(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    settings = _settings(ehr_auth="basic", ehr_auth_username="u", ehr_auth_password="pw")
    _client(settings, clock).read("Patient", "p1")
    assert _authorization(ehr) == "Basic " + base64.b64encode(b"u:pw").decode()


def test_bearer__request__static_token_sent(ehr: responses.RequestsMock, clock: FakeClock) -> None:
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    _client(_settings(ehr_auth="bearer", ehr_auth_token="tok"), clock).read("Patient", "p1")
    assert _authorization(ehr) == "Bearer tok"


def test_bearer__ehr_answers_401__auth_failed_without_retry(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/Patient/p1", status=401)
    client = _client(_settings(ehr_auth="bearer", ehr_auth_token="tok"), clock)
    with pytest.raises(EhrAuthFailed):
        client.read("Patient", "p1")
    assert len(ehr.calls) == 1


def test_repr__auth_objects_and_settings__never_show_secrets(clock: FakeClock) -> None:
    session = new_session()
    shown = [
        repr(BasicAuth("u", SECRET)),
        repr(BearerAuth(SECRET)),
        repr(auth_from_settings(_client_credentials(), session, clock)),
        repr(_client_credentials(ehr_auth_password=SECRET, ehr_auth_token=SECRET)),
        repr(_client(_client_credentials(), clock)),
    ]
    assert all(SECRET not in text for text in shown)


# --- OAuth2 client credentials ---


def test_client_credentials__first_call__token_fetched_with_basic_client_auth(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    _serve_tokens(ehr, "t1")
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    _client(_client_credentials(ehr_auth_scope="system/*.read"), clock).read("Patient", "p1")
    token_request = ehr.calls[0].request
    expected = "Basic " + base64.b64encode(f"adapter:{SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == expected
    assert _form(token_request) == {"grant_type": "client_credentials", "scope": "system/*.read"}
    assert _authorization(ehr) == "Bearer t1"


def test_client_credentials__token_still_fresh__reused(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    _serve_tokens(ehr, "t1")
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client(_client_credentials(), clock)
    client.read("Patient", "p1")
    clock.now += 200
    client.read("Patient", "p1")
    token_calls = [c for c in ehr.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1
    assert _authorization(ehr) == "Bearer t1"


def test_client_credentials__token_near_expiry__refreshed(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    _serve_tokens(ehr, "t1", "t2")
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client(_client_credentials(), clock)
    client.read("Patient", "p1")
    clock.now += 300 - 30  # inside the refresh margin, before expires_in runs out
    client.read("Patient", "p1")
    assert _authorization(ehr) == "Bearer t2"


def test_client_credentials__ehr_answers_401__fresh_token_and_one_retry(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    _serve_tokens(ehr, "t1", "t2")
    ehr.get(f"{BASE}/Patient/p1", status=401)
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    fetched = _client(_client_credentials(), clock).read("Patient", "p1")
    assert fetched.resource == PATIENT
    assert [_authorization(ehr, 1), _authorization(ehr, 3)] == ["Bearer t1", "Bearer t2"]


def test_client_credentials__ehr_answers_401_twice__auth_failed_after_one_retry(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    _serve_tokens(ehr, "t1", "t2", "t3")
    ehr.get(f"{BASE}/Patient/p1", status=401)
    with pytest.raises(EhrAuthFailed):
        _client(_client_credentials(), clock).read("Patient", "p1")
    urls = [c.request.url for c in ehr.calls]
    assert urls == [TOKEN_URL, f"{BASE}/Patient/p1", TOKEN_URL, f"{BASE}/Patient/p1"]


def test_token_endpoint__refuses_client__auth_failed_naming_only_the_oauth_error(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    reply = {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
    ehr.post(TOKEN_URL, status=401, json=reply)
    with pytest.raises(EhrAuthFailed) as caught:
        _client(_client_credentials(), clock).read("Patient", "p1")
    assert "invalid_client" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"status": 503}, EhrUnavailable),
        ({"body": requests.ConnectionError("reset")}, EhrUnavailable),
        ({"json": {"token_type": "Bearer"}}, EhrBadResponse),
        ({"json": {"access_token": "t", "token_type": "mac"}}, EhrBadResponse),
        ({"body": "<html>login</html>"}, EhrBadResponse),
    ],
)
def test_token_endpoint__unusable_answer__most_specific_error(
    ehr: responses.RequestsMock, clock: FakeClock, reply: dict[str, object], error: type[Exception]
) -> None:
    ehr.add(responses.POST, TOKEN_URL, **reply)  # type: ignore[arg-type]
    with pytest.raises(error):
        _client(_client_credentials(), clock).read("Patient", "p1")


def test_token_endpoint__no_expires_in__cached_for_a_short_default(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.post(TOKEN_URL, json={"access_token": "t1", "token_type": "bearer"})
    ehr.post(TOKEN_URL, json=_token_reply("t2"))
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client(_client_credentials(), clock)
    client.read("Patient", "p1")
    clock.now += 3600
    client.read("Patient", "p1")
    assert _authorization(ehr) == "Bearer t2"


def test_token_endpoint__not_configured__discovered_from_smart_configuration(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    _serve_tokens(ehr, "t1")
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client(_client_credentials(ehr_auth_token_url=""), clock)
    client.read("Patient", "p1")
    client.read("Patient", "p1")
    assert [c.request.url for c in ehr.calls][:2] == [
        f"{BASE}/.well-known/smart-configuration",
        TOKEN_URL,
    ]
    assert len(ehr.calls) == 4


def test_discovery__plain_http_token_endpoint_for_https_ehr__refused(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    insecure = {"token_endpoint": "http://auth.ehr.test/token"}
    ehr.get(f"{BASE}/.well-known/smart-configuration", json=insecure)
    with pytest.raises(EhrBadResponse):
        _client(_client_credentials(ehr_auth_token_url=""), clock).read("Patient", "p1")
    assert len(ehr.calls) == 1


# --- SMART Backend Services ---


def _write_key(tmp_path: Path, key: SigningKey) -> str:
    path = tmp_path / "client-key.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return str(path)


def _smart(key_file: str, **extra: object) -> Settings:
    return _settings(
        ehr_auth="smart_backend",
        ehr_auth_client_id="adapter-client",
        ehr_auth_private_key_file=key_file,
        ehr_auth_key_id="key-2024",
        ehr_auth_token_url=TOKEN_URL,
        **extra,
    )


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
    ],
    ids=["rsa", "ec-p384"],
)
def test_smart_backend__token_request__signed_assertion_the_endpoint_can_verify(
    ehr: responses.RequestsMock,
    clock: FakeClock,
    tmp_path: Path,
    key: SigningKey,
    algorithm: str,
) -> None:
    clock.now = time.time()  # PyJWT checks exp and iat against the real clock
    assertions: list[dict[str, str]] = []

    def token_endpoint(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assertions.append(_form(request))
        return 200, {}, json.dumps(_token_reply(f"t{len(assertions)}", expires_in=60))

    ehr.add_callback(responses.POST, TOKEN_URL, callback=token_endpoint)
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    client = _client(_smart(_write_key(tmp_path, key)), clock)
    client.read("Patient", "p1")
    clock.now += 60
    client.read("Patient", "p1")

    form = assertions[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert form["scope"] == "system/*.read system/*.write"
    header = jwt.get_unverified_header(form["client_assertion"])
    assert (header["alg"], header["kid"]) == (algorithm, "key-2024")
    claims = jwt.decode(
        form["client_assertion"], key.public_key(), algorithms=[algorithm], audience=TOKEN_URL
    )
    assert claims["iss"] == claims["sub"] == "adapter-client"
    assert claims["exp"] <= int(clock.now - 60) + 300
    second = jwt.decode(assertions[1]["client_assertion"], options={"verify_signature": False})
    assert second["jti"] != claims["jti"]
    assert _authorization(ehr) == "Bearer t2"
    assert "Authorization" not in ehr.calls[0].request.headers


def test_smart_backend__assertion_signed_by_another_key__does_not_verify(
    ehr: responses.RequestsMock, clock: FakeClock, tmp_path: Path
) -> None:
    clock.now = time.time()
    key = ec.generate_private_key(ec.SECP384R1())
    ehr.post(TOKEN_URL, json=_token_reply("t1"))
    ehr.get(f"{BASE}/Patient/p1", json=PATIENT)
    _client(_smart(_write_key(tmp_path, key)), clock).read("Patient", "p1")
    assertion = _form(ehr.calls[0].request)["client_assertion"]
    stranger = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(assertion, stranger, algorithms=["ES384"], audience=TOKEN_URL)


@pytest.mark.parametrize(
    "key",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
        ec.generate_private_key(ec.SECP256R1()),
    ],
    ids=["rsa-1024", "ec-p256"],
)
def test_load_signing_key__weak_or_wrong_curve__config_error_naming_the_variable(
    tmp_path: Path, key: SigningKey
) -> None:
    with pytest.raises(ConfigError, match="ADAPTER_EHR_AUTH_PRIVATE_KEY_FILE"):
        load_signing_key(_write_key(tmp_path, key))


@pytest.mark.parametrize("content", [None, b"not a key", b"-----BEGIN PRIVATE KEY-----\nAA\n"])
def test_load_signing_key__missing_or_garbage__config_error_without_content(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="ADAPTER_EHR_AUTH_PRIVATE_KEY_FILE") as caught:
        load_signing_key(str(path))
    assert "not a key" not in str(caught.value)


def test_auth_from_settings__each_kind__its_auth_class(tmp_path: Path, clock: FakeClock) -> None:
    key_file = _write_key(tmp_path, ec.generate_private_key(ec.SECP384R1()))
    session = new_session()
    kinds = {
        EhrAuth: _settings(),
        BasicAuth: _settings(ehr_auth="basic", ehr_auth_username="u", ehr_auth_password="p"),
        BearerAuth: _settings(ehr_auth="bearer", ehr_auth_token="t"),
        TokenAuth: _client_credentials(),
    }
    for kind, settings in kinds.items():
        assert type(auth_from_settings(settings, session, clock)) is kind
    assert type(auth_from_settings(_smart(key_file), session, clock)) is TokenAuth


def test_static_kinds__ehr_refuses__nothing_to_refresh() -> None:
    assert not EhrAuth().forget()
    assert not BearerAuth("t").forget()
