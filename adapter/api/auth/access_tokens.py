"""The access tokens the adapter's own token endpoint issues: signed, and verified, here.

An access token is a JWT signed ES384 by the key in `ADAPTER_TOKEN_SIGNING_KEY_FILE` (an EC
P-384 private key, PEM), made at the first start with SMART clients when the file is absent
(readable by its owner only; several web processes starting at once agree on one file). Its
`kid` is the key's RFC 7638 thumbprint, which is how `authenticated_caller` tells our tokens
from an outside authorisation server's. A token lives `ACCESS_TOKEN_SECONDS` (5 minutes) and
carries the client's tenant and granted scope: it is then checked by the same scope and
tenant rules as an API key. Rotation (docs/operations.md): replace or delete the file and
restart; tokens signed by the old key are refused from then on, and clients simply ask for a
new one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from adapter.api.auth.callers import Caller
from adapter.errors import ConfigError, NotAuthenticated

ACCESS_TOKEN_SECONDS = 300
ALGORITHM = "ES384"
ISSUER = "urn:ketamine-fhir-adapter:token-endpoint"
AUDIENCE = "urn:ketamine-fhir-adapter:api"
KEY_FILE_VARIABLE = "ADAPTER_TOKEN_SIGNING_KEY_FILE"
# Clock skew between web processes of one machine is nil; this only covers the request's time.
LEEWAY_SECONDS = 5


class AccessTokens:
    """Issues access tokens for a client, and turns one back into a `Caller`."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private = private_key
        self._public = private_key.public_key()
        self.kid = _thumbprint(self._public)

    def issue(self, client_id: str, tenant: str, scope: str, now: datetime) -> str:
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": client_id,
            "client_id": client_id,
            "tenant": tenant,
            "scope": scope,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ACCESS_TOKEN_SECONDS)).timestamp()),
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid})

    def is_ours(self, token: str) -> bool:
        """Whether `token` names our signing key (it is then verified by `caller` alone)."""
        try:
            return bool(jwt.get_unverified_header(token).get("kid") == self.kid)
        except jwt.PyJWTError:
            return False

    def caller(self, token: str) -> Caller:
        claims = self._claims(token)
        scope, tenant, client_id = claims.get("scope"), claims.get("tenant"), claims.get("sub")
        if not all(isinstance(value, str) for value in (scope, tenant, client_id)):
            raise NotAuthenticated("the access token lacks its claims", token_given=True)
        return Caller(str(tenant), frozenset(str(scope).split()), f"smart:{client_id}")

    def _claims(self, token: str) -> Mapping[str, Any]:
        try:
            return jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the access token has expired", token_given=True) from None
        except jwt.PyJWTError:
            raise NotAuthenticated("the access token is not valid", token_given=True) from None


def signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The private key in the PEM file at `path`, made there first when it is absent."""
    file = Path(path)
    if not file.exists():
        _create_key_file(file)
    try:
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except OSError as exc:
        raise _refused(path, f"cannot be read ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise _refused(path, "is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
        raise _refused(path, "must be an EC P-384 key (delete it: a new one is made)")
    return key


def _create_key_file(file: Path) -> None:
    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    try:
        # A hard link fails when the file exists: the first web process to get there wins,
        # and every other one then reads the same key.
        os.link(temporary, file)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _thumbprint(public: ec.EllipticCurvePublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256 of its required members, sorted)."""
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _refused(path: str, problem: str) -> ConfigError:
    return ConfigError(f"{KEY_FILE_VARIABLE} ({path}): {problem}")
