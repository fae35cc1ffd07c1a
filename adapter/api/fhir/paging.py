"""Paging tokens for `/fhir` search, history and `$everything`: opaque, sealed, tenant-free.

A token holds where the page starts (the sort key and primary key of the row it follows
or precedes), the snapshot taken at the first page (highest resource primary key and the
time), and a digest of the query it belongs to. It never holds a tenant: the tenant always
comes from the caller, so a token cannot reach another tenant's data. It is encrypted and
authenticated (AES-256-GCM under a key of its own, derived from the secret and 16 random
bytes the token carries), so a caller reads nothing in it: the store's primary keys count
every tenant's resources. A token that was changed, is not ours (another
`ADAPTER_PAGING_SECRET`), or belongs to another query is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapter.errors import RequestRefused

CURSOR_PARAMETER = "_cursor"
SALT_BYTES = 16
# Each token's key is used once, so one fixed nonce is safe (and saves 12 bytes a token).
NONCE = bytes(12)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (`forward`) or before the row keyed (`sort`, `pk`)."""

    query: str
    snapshot_pk: int
    snapshot_at: str
    sort: Any = None
    pk: int = 0
    forward: bool = True


def query_digest(pairs: list[tuple[str, str]]) -> str:
    """A digest of the query's parameters (paging and format ones left out)."""
    kept = sorted((k, v) for k, v in pairs if k not in (CURSOR_PARAMETER, "_format"))
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:32]


class PagingTokens:
    """Seals and opens cursors with one secret (shared by every process of a deployment)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps(
            [
                cursor.query,
                cursor.snapshot_pk,
                cursor.snapshot_at,
                cursor.sort,
                cursor.pk,
                cursor.forward,
            ],
            separators=(",", ":"),
        ).encode()
        salt = os.urandom(SALT_BYTES)
        return _b64(salt + self._cipher(salt).encrypt(NONCE, payload, None))

    def decode(self, token: str, query: str) -> Cursor:
        """The cursor in `token`, checked to be ours, intact, and for `query` (else 400)."""
        try:
            sealed = _unb64(token)
            salt, body = sealed[:SALT_BYTES], sealed[SALT_BYTES:]
            payload = self._cipher(salt).decrypt(NONCE, body, None)
        except (binascii.Error, ValueError, InvalidTag):
            raise RequestRefused(
                f"{CURSOR_PARAMETER} is not a paging token of this server"
            ) from None
        fields = json.loads(payload)
        cursor = Cursor(*fields)
        if cursor.query != query:
            raise RequestRefused(f"{CURSOR_PARAMETER} belongs to another query")
        return cursor

    def _cipher(self, salt: bytes) -> AESGCM:
        """The token's own key: HMAC-SHA256 of its salt under the secret."""
        if len(salt) != SALT_BYTES:
            raise ValueError("no salt")
        return AESGCM(hmac.new(self._secret, salt, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    # Strict: a character outside the alphabet is a changed token, not one to skip.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
