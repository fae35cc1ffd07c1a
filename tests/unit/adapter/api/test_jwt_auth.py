"""JWT access tokens: verified against a JWKS served by a real local HTTP server.

The keys are generated here; the JWKS is served over loopback by `http.server`, so fetching,
caching and the rotation refetch run for real. Only the JWKS's failures (down, not JSON)
are mocked with `responses`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from adapter.api.app import create_app
from adapter.api.auth import jwt_tokens as jwt_auth
from adapter.api.auth.jwt_tokens import JwksCache, JwtVerifier
from adapter.config import Settings
from adapter.errors import NotAuthenticated
from tests.unit.adapter.api.conftest import JSON, WRITER_A, example_bytes, running, settings_for

ISSUER = "https://auth.example.org"
AUDIENCE = "https://adapter.example.org"


@dataclass
class Jwks:
    """The JWKS the local server serves (changeable mid-test) and how often it was fetched."""

    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    fetches: int = 0
    url: str = ""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return jwk | {"kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid} | header
        )


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("rsa-1", "RS256", rsa.generate_private_key(65537, 2048))


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey("ec-1", "ES384", ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture
def jwks(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[Jwks]:
    served = Jwks({"keys": [rsa_key.public_jwk(), ec_key.public_jwk()]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            served.fetches += 1
            body = json.dumps(served.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    yield served
    server.shutdown()
    server.server_close()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ehr-client-7",
        "iat": now,
        "exp": now + 300,
        "tenant": "clinic-a",
        "scope": "system/Observation.rs clinic/encounters.write",
    }
    return base | overrides


def verifier(source: str) -> JwtVerifier:
    return JwtVerifier(JwksCache(source), issuer=ISSUER, audience=AUDIENCE, leeway_seconds=5)


def refusal(check: JwtVerifier, token: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        check.caller(token)
    assert caught.value.headers() == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return str(caught.value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], secret: bytes = b"") -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


def test_valid_tokens__rs256_and_es384__give_tenant_scopes_and_client(
    jwks: Jwks, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    check = verifier(jwks.url)
    caller = check.caller(rsa_key.sign(claims(client_id="ehr-app")))
    assert caller.tenant == "clinic-a"
    assert caller.scopes == {"system/Observation.rs", "clinic/encounters.write"}
    assert caller.key_id == "jwt:ehr-app"
    assert check.caller(ec_key.sign(claims(tenant="clinic-b"))).tenant == "clinic-b"
    assert jwks.fetches == 1  # cached


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iat": int(time.time()) + 3600}, "not valid"),
        ({"iss": "https://evil.example.org"}, "another issuer"),
        ({"aud": "https://other.example.org"}, "another audience"),
        ({"tenant": None}, "no valid `tenant` claim"),
        ({"tenant": "a b"}, "no valid `tenant` claim"),
        ({"scope": ["system/*.rs"]}, "space-separated"),
        ({"sub": None}, "names no client"),
    ],
)
def test_bad_claims__refused_naming_why(
    jwks: Jwks, rsa_key: SigningKey, overrides: dict[str, Any], reason: str
) -> None:
    token = rsa_key.sign({k: v for k, v in claims(**overrides).items() if v is not None})
    assert reason in refusal(verifier(jwks.url), token)


def test_missing_exp__refused(jwks: Jwks, rsa_key: SigningKey) -> None:
    token = rsa_key.sign({k: v for k, v in claims().items() if k != "exp"})
    assert "MissingRequiredClaimError" in refusal(verifier(jwks.url), token)


def test_small_clock_skew__within_leeway__accepted(jwks: Jwks, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(claims(exp=int(time.time()) - 2, nbf=int(time.time()) + 2))
    assert verifier(jwks.url).caller(token).tenant == "clinic-a"


def test_alg_none__refused_before_any_key(jwks: Jwks) -> None:
    token = unsigned_token({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, claims())
    assert "algorithm is not one of" in refusal(verifier(jwks.url), token)
    assert jwks.fetches == 0


def test_hs256_with_the_public_key_as_secret__refused(jwks: Jwks, rsa_key: SigningKey) -> None:
    public_pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = unsigned_token({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims(), public_pem)
    assert "algorithm is not one of" in refusal(verifier(jwks.url), token)


def test_token_alg_differs_from_its_keys__refused(jwks: Jwks, rsa_key: SigningKey) -> None:
    other = SigningKey("rsa-1", "RS384", rsa_key.private)
    assert "not its key's" in refusal(verifier(jwks.url), other.sign(claims()))


def test_signed_by_another_key_with_a_known_kid__refused(jwks: Jwks) -> None:
    impostor = SigningKey("rsa-1", "RS256", rsa.generate_private_key(65537, 2048))
    assert "InvalidSignatureError" in refusal(verifier(jwks.url), impostor.sign(claims()))


def test_unknown_kid__one_refetch_then_rate_limited(jwks: Jwks, rsa_key: SigningKey) -> None:
    check = verifier(jwks.url)
    stranger = SigningKey("unknown", "RS256", rsa_key.private)
    assert "does not hold" in refusal(check, stranger.sign(claims()))
    assert jwks.fetches == 1  # the first fetch is the refetch
    for _ in range(5):
        refusal(check, stranger.sign(claims()))
    assert jwks.fetches == 1


def test_rotation__new_kid_fetched_once_interval_has_passed(
    jwks: Jwks, rsa_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    check = JwtVerifier(JwksCache(jwks.url, clock=lambda: now[0]), issuer=ISSUER, audience=AUDIENCE)
    assert check.caller(rsa_key.sign(claims())).tenant == "clinic-a"
    rotated = SigningKey("rsa-2", "RS256", rsa.generate_private_key(65537, 2048))
    jwks.document = {"keys": [rotated.public_jwk()]}
    now[0] += 1  # too soon after the last fetch: no refetch
    assert "does not hold" in refusal(check, rotated.sign(claims()))
    now[0] += jwt_auth.REFETCH_INTERVAL_SECONDS
    assert check.caller(rotated.sign(claims())).key_id == "jwt:ehr-client-7"
    assert jwks.fetches == 2


def test_jwks_from_a_file(tmp_path: Path, rsa_key: SigningKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_key.public_jwk()]}))
    assert verifier(str(path)).caller(rsa_key.sign(claims())).tenant == "clinic-a"


@responses.activate
def test_jwks_down__401_and_cached_keys_kept(rsa_key: SigningKey) -> None:
    url = "https://auth.example.org/jwks.json"
    responses.get(url, json={"keys": [rsa_key.public_jwk()]})
    now = [0.0]
    check = JwtVerifier(JwksCache(url, clock=lambda: now[0]), issuer=ISSUER, audience=AUDIENCE)
    assert check.caller(rsa_key.sign(claims())).tenant == "clinic-a"
    responses.replace(responses.GET, url, body=requests.ConnectionError("down"))
    now[0] += 3600
    stranger = SigningKey("rsa-9", "RS256", rsa_key.private)
    assert "does not hold" in refusal(check, stranger.sign(claims()))
    assert check.caller(rsa_key.sign(claims())).tenant == "clinic-a"


@responses.activate
def test_jwks_down__forged_kids__one_failed_fetch_per_interval(rsa_key: SigningKey) -> None:
    url = "https://auth.example.org/jwks.json"
    responses.get(url, body=requests.ConnectionError("down"))
    now = [0.0]
    check = JwtVerifier(JwksCache(url, clock=lambda: now[0]), issuer=ISSUER, audience=AUDIENCE)
    for number in range(5):
        forged = SigningKey(f"forged-{number}", "RS256", rsa_key.private)
        assert "does not hold" in refusal(check, forged.sign(claims()))
    assert len(responses.calls) == 1  # a failed fetch starts the interval too
    now[0] += jwt_auth.REFETCH_INTERVAL_SECONDS
    refusal(check, SigningKey("forged-5", "RS256", rsa_key.private).sign(claims()))
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    "reply",
    [
        {"body": "not json {", "status": 200},
        {"json": {"error": "oops"}, "status": 500},
        {"json": {"keys": "none"}, "status": 200},
        {"json": {"keys": [{"kty": "RSA", "kid": "rsa-1", "n": "!", "e": "AQAB"}]}, "status": 200},
        {"json": {"keys": [{"kty": "oct", "kid": "rsa-1", "k": "c2VjcmV0"}]}, "status": 200},
    ],
)
@responses.activate
def test_jwks_unusable__every_token_refused(rsa_key: SigningKey, reply: dict[str, Any]) -> None:
    url = "https://auth.example.org/jwks.json"
    responses.get(url, **reply)
    assert "does not hold" in refusal(verifier(url), rsa_key.sign(claims()))


def test_settings__hmac_or_none_algorithms_refused_and_issuer_required() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(jwt_algorithms="RS256,HS256")
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(jwt_algorithms="none")
    with pytest.raises(ValueError, match="ADAPTER_JWT_ISSUER"):
        Settings(jwks_url="https://auth.example.org/jwks.json")
    with pytest.raises(ValueError, match="asymmetric"):
        JwtVerifier(JwksCache("x"), issuer=ISSUER, audience=AUDIENCE, algorithms=("HS256",))


def _jwt_app(tmp_path: Path, jwks: Jwks) -> Iterator[TestClient]:
    settings = settings_for(tmp_path, jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    yield from running(create_app(settings))


def test_app__jwt_beside_api_keys__tenancy_and_scopes(
    tmp_path: Path, jwks: Jwks, rsa_key: SigningKey
) -> None:
    writer = rsa_key.sign(claims(scope="clinic/encounters.write clinic/submissions.read"))
    other_tenant = rsa_key.sign(claims(tenant="clinic-b", scope="clinic/submissions.read"))
    reader_only = rsa_key.sign(claims(scope="system/*.rs"))
    body = example_bytes("typical-ketamine-infusion")
    for client in _jwt_app(tmp_path, jwks):
        created = client.post(
            "/clinic/encounters",
            content=body,
            headers={"Content-Type": JSON, "Authorization": f"Bearer {writer}"},
        )
        assert created.status_code == 201
        url = created.json()["status_url"]
        mine = client.get(url, headers={"Authorization": f"Bearer {writer}"})
        theirs = client.get(url, headers={"Authorization": f"Bearer {other_tenant}"})
        no_scope = client.post(
            "/clinic/encounters",
            content=body,
            headers={"Content-Type": JSON, "Authorization": f"Bearer {reader_only}"},
        )
        expired = rsa_key.sign(claims(exp=int(time.time()) - 3600))
        refused = client.get(url, headers={"Authorization": f"Bearer {expired}"})
        api_key = client.get(url, headers={"Authorization": "Bearer " + WRITER_A})
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert no_scope.status_code == 403
    assert "insufficient_scope" in no_scope.headers["WWW-Authenticate"]
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert api_key.status_code == 200


def test_app__jwks_fetched_at_startup__before_any_request(tmp_path: Path, jwks: Jwks) -> None:
    for client in _jwt_app(tmp_path, jwks):
        deadline = time.monotonic() + 30
        while jwks.fetches == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/health").status_code == 200
    assert jwks.fetches == 1


def test_app__jwt_reads_fhir_with_smart_v2_scope(
    tmp_path: Path, jwks: Jwks, rsa_key: SigningKey
) -> None:
    observations = rsa_key.sign(claims(scope="system/Observation.rs"))
    for client in _jwt_app(tmp_path, jwks):
        allowed = client.get(
            "/fhir/Observation/none", headers={"Authorization": f"Bearer {observations}"}
        )
        denied = client.get(
            "/fhir/Patient/none", headers={"Authorization": f"Bearer {observations}"}
        )
    assert allowed.status_code == 404
    assert denied.status_code == 403
