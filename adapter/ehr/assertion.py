"""SMART Backend Services client assertions: a short-lived JWT signed with our private key.

The EHR's token endpoint verifies it with the public key we registered (by `kid`), so no
shared secret ever crosses the network. The algorithm follows the key: RS384 for RSA
(at least 2048 bits), ES384 for EC on P-384, the two SMART asks servers to support.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TypeAlias

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import SECP384R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapter.errors import ConfigError

SigningKey: TypeAlias = RSAPrivateKey | EllipticCurvePrivateKey
KEY_FILE_VARIABLE = "ADAPTER_EHR_AUTH_PRIVATE_KEY_FILE"
MIN_RSA_BITS = 2048
# SMART: exp no more than five minutes ahead; a little less leaves room for clock skew.
ASSERTION_LIFETIME_SECONDS = 240
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def load_signing_key(path: str) -> SigningKey:
    """The PEM private key in `path`, or `ConfigError` naming the variable (never the key)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{KEY_FILE_VARIABLE}: cannot read the file ({exc.strerror})") from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        message = "not an unencrypted PEM private key"
        raise ConfigError(f"{KEY_FILE_VARIABLE}: {message}") from None
    return _usable(key)


def _usable(key: object) -> SigningKey:
    if isinstance(key, RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return key
    if isinstance(key, EllipticCurvePrivateKey) and isinstance(key.curve, SECP384R1):
        return key
    message = f"the key must be RSA of at least {MIN_RSA_BITS} bits, or EC on P-384"
    raise ConfigError(f"{KEY_FILE_VARIABLE}: {message}")


def signing_algorithm(key: SigningKey) -> str:
    return "RS384" if isinstance(key, RSAPrivateKey) else "ES384"


def client_assertion(
    *, client_id: str, audience: str, key: SigningKey, key_id: str, now: float
) -> str:
    """A signed JWT saying "I am `client_id`" to the token endpoint `audience`, used once."""
    issued = int(now)
    claims: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        claims, key, algorithm=signing_algorithm(key), headers={"kid": key_id, "typ": "JWT"}
    )
