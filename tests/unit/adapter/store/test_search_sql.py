"""Search statements built once per query shape: every bound name gets its value, and
queries differing only in values share one statement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.api.fhir.params import parse_search
from adapter.store.search_query import SearchQuery, Snapshot
from adapter.store.search_sql import page_statement, shape_of, total_statement, values

SNAPSHOT = Snapshot(1234, datetime(2026, 11, 25, tzinfo=UTC))
PAGING_NAMES = {"limit", "after_key", "after_pk"}
# Every kind of value the SQL treats apart: tokens with a system, none or an empty one,
# references typed or not, each date prefix, ids, `_lastUpdated` ranges, both sorts.
QUERIES = [
    ("Observation", "patient=Patient/p1&code=http://loinc.org|44261-6"),
    ("Observation", "code=8867-4,|x,http://loinc.org|y&subject=p2"),
    ("Observation", "date=ge2026-01-01&date=lt2026-02&date=2026-01-05&_sort=-date"),
    ("Encounter", "date=le2026-01-01,gt2026-03-01&status=finished&_sort=_lastUpdated"),
    ("Patient", "_id=a,b,c&identifier=MRN-1"),
    ("Observation", "_lastUpdated=gt2026-01-01&_lastUpdated=lt2027&_lastUpdated=2026-06"),
    ("Observation", ""),
]


def _query(resource_type: str, text: str) -> SearchQuery:
    pairs = [(k, v) for k, _, v in (p.partition("=") for p in text.split("&") if p)]
    return parse_search(resource_type, pairs, strict=True)


@pytest.mark.parametrize(("resource_type", "text"), QUERIES)
def test_statements__every_bound_name_has_a_value(resource_type: str, text: str) -> None:
    query = _query(resource_type, text)
    given = set(values("clinic-a", query, SNAPSHOT)) | PAGING_NAMES
    shape = shape_of(query)
    for statement in (
        total_statement(shape),
        page_statement(shape, True, False),
        page_statement(shape, False, True),
    ):
        params = statement.compile().params
        unvalued = {name for name, value in params.items() if value is None}
        assert unvalued <= given, text
        assert "tenant" in unvalued


def test_statements__same_shape_other_values__one_statement() -> None:
    first = _query("Observation", "patient=Patient/p1&code=http://loinc.org|44261-6")
    second = _query("Observation", "patient=Patient/p2&code=http://snomed.info/sct|7")
    other = _query("Observation", "patient=Patient/p2&code=7")
    assert shape_of(first) == shape_of(second) != shape_of(other)
    assert page_statement(shape_of(first), True, False) is page_statement(
        shape_of(second), True, False
    )
    assert values("a", first, SNAPSHOT)["c0_0"] == "Patient/p1"
    assert values("a", second, SNAPSHOT)["c1_0_system"] == "http://snomed.info/sct"
