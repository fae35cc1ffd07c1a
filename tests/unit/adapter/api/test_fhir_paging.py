"""Paging tokens: they round-trip, and any change, foreign key or other query is refused."""

from __future__ import annotations

import base64
import json

import pytest

from adapter.api.fhir.paging import Cursor, PagingTokens, query_digest
from adapter.errors import RequestRefused

TOKENS = PagingTokens(b"k" * 32)
QUERY = query_digest([("code", "8867-4"), ("_count", "5")])
CURSOR = Cursor(QUERY, 120, "2026-11-24T09:00:00+00:00", "2026-11-20T14:00:00+00:00", 17, True)


def test_token__round_trip__same_cursor() -> None:
    assert TOKENS.decode(TOKENS.encode(CURSOR), QUERY) == CURSOR


def test_token__url_safe_and_opaque__no_store_number_readable() -> None:
    token = TOKENS.encode(CURSOR)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # The primary keys count every tenant's resources: not in the token as text or JSON.
    assert b"120" not in raw
    assert b"2026" not in raw
    assert QUERY.encode() not in raw
    assert TOKENS.encode(CURSOR) != token  # a fresh key per token: equal cursors look apart


def test_query_digest__order_and_paging_parameters_do_not_matter() -> None:
    shuffled = query_digest([("_count", "5"), ("_cursor", "x"), ("code", "8867-4")])
    assert shuffled == QUERY
    assert query_digest([("code", "8867-5"), ("_count", "5")]) != QUERY


def _flipped(token: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[position] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _unsealed(token: str) -> str:
    """A token in the older, only signed form: readable JSON."""
    fields = [QUERY, 1, CURSOR.snapshot_at, CURSOR.sort, 1, True]
    body = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    return f"{body}.{token[:43]}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _flipped(t, 3),  # its salt: another key
        lambda t: _flipped(t, 40),  # its sealed body
        lambda t: t[:-4],
        lambda t: t[:20],
        lambda t: "",
        lambda t: "!!!" + t,
        _unsealed,
        lambda t: PagingTokens(b"other-secret").encode(CURSOR),
    ],
)
def test_token__tampered_or_foreign__refused(tamper: object) -> None:
    assert callable(tamper)
    with pytest.raises(RequestRefused, match="_cursor"):
        TOKENS.decode(tamper(TOKENS.encode(CURSOR)), QUERY)


def test_token__of_another_query__refused() -> None:
    with pytest.raises(RequestRefused, match="another query"):
        TOKENS.decode(TOKENS.encode(CURSOR), query_digest([("code", "1")]))
