"""Paging tokens for `/fhir` search, history and `$everything`: opaque, signed, tenant-free.

A token is `<base64url JSON>.<base64url HMAC-SHA256>` holding where the page starts (the
sort key and primary key of the row it follows or precedes), the snapshot taken at the
first page (highest resource primary key and the time), and a digest of the query it
belongs to. It never holds a tenant: the tenant always comes from the caller, so a token
cannot reach another tenant's data. A token that was changed, is not ours (another
`ADAPTER_PAGING_SECRET`), or belongs to another query is refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from adapter.errors import RequestRefused

CURSOR_PARAMETER = "_cursor"


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
    """Signs and checks cursors with one secret (shared by every process of a deployment)."""

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
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, token: str, query: str) -> Cursor:
        """The cursor in `token`, checked to be ours, intact, and for `query` (else 400)."""
        body, _, mac = token.partition(".")
        try:
            payload = _unb64(body)
            intact = hmac.compare_digest(_unb64(mac), self._mac(payload))
        except (binascii.Error, ValueError):
            intact = False
        if not intact:
            raise RequestRefused(f"{CURSOR_PARAMETER} is not a paging token of this server")
        fields = json.loads(payload)
        cursor = Cursor(*fields)
        if cursor.query != query:
            raise RequestRefused(f"{CURSOR_PARAMETER} belongs to another query")
        return cursor

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
