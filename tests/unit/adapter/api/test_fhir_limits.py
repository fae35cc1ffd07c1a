"""What one `/fhir` search may ask: each limit a 400 naming the parameter and the limit,
the time budget a 422, and a statement too large for SQLite never a 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from adapter.api.fhir.limits import is_heavy
from adapter.store import search
from tests.unit.adapter.api.conftest import FHIR_KEY, bearer, searchable

KEY = FHIR_KEY
ENDLESS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from searchable(tmp_path)


def _refusal(client: TestClient, query: str, status: int = 400) -> str:
    reply = client.get(f"/fhir/Observation?{query}", headers=bearer(KEY))
    assert reply.status_code == status, reply.text
    outcome = reply.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics: str = outcome["issue"][0]["diagnostics"]
    return diagnostics


def test_search__date_pair_repeated_200_times__400_naming_date_and_the_limit(
    client: TestClient,
) -> None:
    query = "&".join(["date=ge2020&date=le2030"] * 200)
    message = _refusal(client, query)
    assert "the query has 400 parameters; the limit is 32" in message
    assert "ADAPTER_SEARCH_MAX_PARAMETERS" in message


def test_search__query_string_over_the_limit__400_naming_the_limit(client: TestClient) -> None:
    message = _refusal(client, "identifier=" + "x" * 9000)
    assert "the query string is 9011 characters long; the limit is 8192" in message
    assert "ADAPTER_SEARCH_MAX_QUERY_LENGTH" in message


def test_search__parameter_repeated_over_the_limit__400_naming_it(client: TestClient) -> None:
    message = _refusal(client, "&".join(["identifier=x"] * 9))
    assert "'identifier' is given 9 times; the limit is 8" in message
    assert "ADAPTER_SEARCH_MAX_REPEATS" in message


def test_search__too_many_parameters__400_naming_the_limit(client: TestClient) -> None:
    query = "&".join(f"{name}=x" for name in ("code", "status", "category", "identifier") * 9)
    message = _refusal(client, query)
    assert "the query has 36 parameters; the limit is 32" in message


def test_search__500_comma_alternatives__400_naming_the_parameter(client: TestClient) -> None:
    message = _refusal(client, "code=" + ",".join(f"c{i}" for i in range(500)))
    assert "'code' has 500 comma-separated values; the limit is 100" in message
    assert "ADAPTER_SEARCH_MAX_ALTERNATIVES" in message


def test_search__too_many_includes__400_naming_them(client: TestClient) -> None:
    query = "&".join(["_include=Observation:patient", "_revinclude=Provenance:target"] * 5)
    message = _refusal(client, query)
    assert "_include and _revinclude are given 10 times together; the limit is 8" in message


def test_search__limits_within__200(client: TestClient) -> None:
    query = "&".join(["date=ge2020", "date=le2030"] * 4 + ["code=" + ",".join(["x"] * 100)])
    reply = client.get(f"/fhir/Observation?{query}", headers=bearer(KEY))
    assert reply.status_code == 200, reply.text


def test_history__query_string_over_the_limit__400(client: TestClient) -> None:
    reply = client.get(f"/fhir/Observation/_history?_since={'x' * 9000}", headers=bearer(KEY))
    assert reply.status_code == 400
    assert "ADAPTER_SEARCH_MAX_QUERY_LENGTH" in reply.json()["issue"][0]["diagnostics"]


def test_search__revinclude_fanning_out_over_the_limit__400_naming_it(tmp_path: Path) -> None:
    for client in searchable(tmp_path, search_max_included=3):
        query = "_revinclude=Observation:subject"
        reply = client.get(f"/fhir/Patient?{query}", headers=bearer(KEY))
        assert reply.status_code == 400, reply.text
        message = reply.json()["issue"][0]["diagnostics"]
        assert "_revinclude adds more resources to this page" in message
        assert "the limit is 3 (ADAPTER_SEARCH_MAX_INCLUDED)" in message


def test_search__include_within_the_fan_out_limit__200(client: TestClient) -> None:
    reply = client.get("/fhir/Patient?_revinclude=Observation:subject", headers=bearer(KEY))
    assert reply.status_code == 200, reply.text
    included = [e for e in reply.json()["entry"] if e["search"]["mode"] == "include"]
    assert included


def test_search__store_refuses_a_statement_too_large__422_never_503(tmp_path: Path) -> None:
    """With the limits lifted, 999 `identifier`s reach SQLite, whose expression tree is too
    deep for them: the request's fault, 422, and no `Retry-After`."""
    lifted = {"search_max_repeats": 5000, "search_max_parameters": 5000}
    for client in searchable(tmp_path, search_max_query_length=100_000, **lifted):
        query = "&".join(f"identifier=x{i}" for i in range(999))
        reply = client.get(f"/fhir/Observation?{query}", headers=bearer(KEY))
        assert reply.status_code == 422, reply.text
        assert "retry-after" not in reply.headers
        assert reply.json()["issue"][0]["code"] == "too-costly"


def test_search__statement_past_the_time_budget__422_and_the_next_search_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = search.page

    def endless_page(conn: Connection, *args: Any) -> list[search.Found]:
        conn.execute(text(ENDLESS))
        return page(conn, *args)

    for client in searchable(tmp_path, statement_timeout_ms=100):
        monkeypatch.setattr(search, "page", endless_page)
        reply = client.get("/fhir/Observation?code=8867-4", headers=bearer(KEY))
        assert reply.status_code == 422, reply.text
        assert "100 ms" in reply.json()["issue"][0]["diagnostics"]
        assert reply.json()["issue"][0]["code"] == "too-costly"
        monkeypatch.setattr(search, "page", page)
        reply = client.get("/fhir/Observation?code=8867-4", headers=bearer(KEY))
        assert reply.status_code == 200


@pytest.mark.parametrize(
    ("query", "heavy"),
    [
        ("code=8867-4", False),
        ("_count=100", False),
        ("_count=101", True),
        ("_count=²", False),
        ("patient=p1&_include=Observation:patient", True),
        ("_revinclude=Provenance:target", True),
    ],
)
def test_is_heavy__big_pages_and_includes_take_the_heavy_thread(query: str, heavy: bool) -> None:
    pairs = [(name, value) for name, _, value in (p.partition("=") for p in query.split("&"))]
    assert is_heavy(pairs) is heavy


def test_search__heavy_searches__served_one_at_a_time_beside_the_others(
    client: TestClient,
) -> None:
    heavy = "/fhir/Patient?_count=1000&_revinclude=Observation:subject"
    replies = [client.get(heavy, headers=bearer(KEY)) for _ in range(3)]
    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert client.app.state.heavy_threads.total_tokens == 1  # type: ignore[attr-defined]
