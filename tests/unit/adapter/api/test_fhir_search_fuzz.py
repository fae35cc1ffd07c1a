"""Fuzzing `/fhir` searches: whatever the query string holds, the answer is never a 5xx.

Hypothesis builds query strings from the parameters this server knows and names it does
not, modifiers, every date prefix FHIR has, values of every kind (dates, tokens,
references, unicode, empty), comma alternatives, repetitions past the limits and long
values, on every served type and a few that are not. The store holds one typical
encounter, so searches reach the SQL and sometimes match. Every answer must be a 2xx or a
4xx carrying an OperationOutcome or a Bundle: bad input is never an outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapter.api.fhir.common import SERVED_TYPES
from tests.unit.adapter.api.conftest import FHIR_KEY, bearer, searchable

KEY = FHIR_KEY
KNOWN = (
    "_id", "_lastUpdated", "identifier", "patient", "subject", "encounter", "target", "code",
    "category", "status", "date", "_count", "_sort", "_include", "_revinclude", "_summary",
    "_format", "_cursor", "_since", "_elements", "_has", "name",
)  # fmt: skip
MODIFIERS = ("", "", "", ":text", ":exact", ":missing", ":not", ":above", ":Patient", ":")
PREFIXES = ("", "", "eq", "ge", "le", "gt", "lt", "ne", "sa", "eb", "ap", "xx")
PLAIN = (
    "2026", "2026-11", "2026-11-20", "2026-11-20T08:40:00-05:00", "2026-11-20T08:40:00+05:00",
    "2026-13-45", "0000", "9999-12-31T23:59:59Z", "http://loinc.org|8867-4", "|8867-4",
    "8867-4", "|", "Patient/x", "Patient/", "Encounter/e1", "Observation:patient",
    "Observation:subject:Patient", "Provenance:target", "Patient:organization", "*:*",
    "_lastUpdated", "-date", "count", "0", "1000000000000", "-1", "²", "json", "xml",
    "http://example.org/fhir/Patient/p1", "",
)  # fmt: skip
TYPES = (*SERVED_TYPES, "Nothing", "patient", "metadata", "Observation")

names = st.builds(
    lambda base, modifier: base + modifier,
    st.sampled_from(KNOWN) | st.text(max_size=12),
    st.sampled_from(MODIFIERS),
)
one_value = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(PREFIXES),
    st.sampled_from(PLAIN) | st.text(max_size=40),
)
# Any character a URL can carry: a lone surrogate cannot even be encoded.
any_character = st.characters(blacklist_categories=["Cs"])
values = st.one_of(
    one_value,
    st.lists(one_value, min_size=2, max_size=6).map(",".join),
    st.builds(lambda v, n: ",".join([v] * n), one_value, st.sampled_from((50, 101, 500))),
    st.builds(lambda c, n: c * n, any_character, st.integers(0, 3000)),
)
pairs = st.lists(st.tuples(names, values), max_size=12)
repeated = st.builds(lambda pair, n: [pair] * n, st.tuples(names, values), st.integers(1, 60))
# The client refuses URLs over 64 kB; the server's own limit is far below.
queries = (pairs | repeated).map(urlencode).map(lambda query: query[:60_000])
# Printable only: the client refuses to send control characters in a URL.
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=8)
raw_queries = st.lists(
    st.sampled_from(("%", "%ZZ", "%C3%28", "%00", "&", "=", ",", "&&", "==", "date", "ge2026"))
    | printable,
    max_size=20,
).map("".join)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from searchable(tmp_path_factory.mktemp("fuzz"))


def _assert_no_5xx(client: TestClient, path: str, strict: bool) -> None:
    headers = bearer(KEY) | ({"Prefer": "handling=strict"} if strict else {})
    reply = client.get(path, headers=headers)
    event(f"answered {reply.status_code}")
    assert reply.status_code < 500, (path[:300], reply.status_code, reply.text[:500])
    if reply.headers.get("content-type", "").startswith("application/fhir+json"):
        assert reply.json()["resourceType"] in ("Bundle", "OperationOutcome", "CapabilityStatement")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource_type=st.sampled_from(TYPES), query=queries, strict=st.booleans())
def test_search__any_query__never_a_5xx(
    client: TestClient, resource_type: str, query: str, strict: bool
) -> None:
    _assert_no_5xx(client, f"/fhir/{resource_type}?{query}", strict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(("Observation", "Patient/_history", "Patient/p1/$everything")),
    query=raw_queries,
)
def test_search__raw_query_string__never_a_5xx(client: TestClient, path: str, query: str) -> None:
    _assert_no_5xx(client, f"/fhir/{path}?{query}", strict=False)
