"""Paging tokens: they round-trip, and any change, foreign key or other query is refused."""

from __future__ import annotations

import base64
import json

import pytest

from adapter.api.fhir_paging import Cursor, PagingTokens, query_digest
from adapter.errors import RequestRefused

TOKENS = PagingTokens(b"k" * 32)
QUERY = query_digest([("code", "8867-4"), ("_count", "5")])
CURSOR = Cursor(QUERY, 120, "2026-11-24T09:00:00+00:00", "2026-11-20T14:00:00+00:00", 17, True)


def test_token__round_trip__same_cursor() -> None:
    assert TOKENS.decode(TOKENS.encode(CURSOR), QUERY) == CURSOR


def test_token__holds_no_tenant_and_is_url_safe() -> None:
    token = TOKENS.encode(CURSOR)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload == [QUERY, 120, CURSOR.snapshot_at, CURSOR.sort, 17, True]


def test_query_digest__order_and_paging_parameters_do_not_matter() -> None:
    shuffled = query_digest([("_count", "5"), ("_cursor", "x"), ("code", "8867-4")])
    assert shuffled == QUERY
    assert query_digest([("code", "8867-5"), ("_count", "5")]) != QUERY


def _forged_payload(token: str) -> str:
    body, mac = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=="))
    fields[4] = 1  # jump to another row
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    return f"{forged}.{mac}"


@pytest.mark.parametrize(
    "tamper",
    [
        _forged_payload,
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "!!!." + t.split(".")[1],
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
