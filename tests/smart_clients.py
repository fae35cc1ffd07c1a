"""SMART Backend Services clients for tests: their keys, the clients file, assertions, and
Authlib's OAuth 2 client getting a token with `private_key_jwt`."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class ClientKey:
    """A client's signing key pair and its `kid`."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str = "rsa-key-1") -> ClientKey:
        return cls(kid, "RS384", rsa.generate_private_key(65537, 2048))

    @classmethod
    def ec(cls, kid: str = "ec-key-1") -> ClientKey:
        return cls(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return jwk | {"kid": self.kid, "use": "sig", "alg": self.algorithm}

    def pem(self) -> bytes:
        return bytes(
            self.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def assertion(self, client_id: str, token_url: str, **overrides: Any) -> str:
        """A client assertion as SMART Backend Services asks (override any claim or `alg`)."""
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "exp": now + 240,
            "jti": secrets.token_urlsafe(16),
        }
        algorithm = overrides.pop("alg", self.algorithm)
        kid = overrides.pop("kid", self.kid)
        claims |= overrides
        return jwt.encode(claims, self.private, algorithm=algorithm, headers={"kid": kid})


def client_entry(
    client_id: str, tenant: str, scopes: list[str], *keys: ClientKey
) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "tenant": tenant,
        "scopes": scopes,
        "jwks": {"keys": [key.public_jwk() for key in keys]},
    }


def write_clients(folder: Path, entries: list[dict[str, Any]]) -> Path:
    path = folder / "smart-clients.json"
    path.write_text(json.dumps(entries))
    return path


def token_form(assertion: str, scope: str = "system/*.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": scope,
    }


def authlib_session(token_url: str, client_id: str, key: ClientKey, scope: str) -> OAuth2Session:
    """Authlib's OAuth 2 client (a `requests.Session`) holding a token it got with
    `private_key_jwt`, as an EHR's client would; its requests carry the token.

    Authlib's assertions live an hour by default; SMART allows five minutes, so `exp` is
    given. A fresh `PrivateKeyJWT` per token: Authlib keeps the `jti` in the claims it is
    given, and a second token with the same `jti` would be a replay.
    """
    method = PrivateKeyJWT(
        token_url,
        claims={"exp": int(time.time()) + 240},
        headers={"kid": key.kid},
        alg=key.algorithm,
    )
    session = OAuth2Session(
        client_id, key.pem().decode(), token_endpoint_auth_method=method, scope=scope
    )
    session.fetch_token(token_url, grant_type="client_credentials")
    return session


def authlib_token(token_url: str, client_id: str, key: ClientKey, scope: str) -> dict[str, Any]:
    """The token `authlib_session` got."""
    session = authlib_session(token_url, client_id, key, scope)
    session.close()
    token: dict[str, Any] = dict(session.token)
    return token
