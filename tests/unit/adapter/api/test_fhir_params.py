"""Search query strings: tokens, references, date prefixes, result parameters, unknowns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapter.api.fhir.params import MAX_COUNT, parse_date, parse_reference, parse_search
from adapter.errors import RequestRefused
from adapter.store.search import DEFAULT_COUNT, DateBound, Include, Token
from adapter.store.search_index import date_range


def test_tokens__system_bar_code__empty_system__bare_code__any_code__or_on_commas() -> None:
    pairs = [("code", "http://loinc.org|8867-4,|x,y,http://snomed.info/sct|")]
    (criterion,) = parse_search("Observation", pairs, strict=True).criteria
    assert criterion.values == (
        Token("http://loinc.org", "8867-4"),
        Token("", "x"),
        Token(None, "y"),
        Token("http://snomed.info/sct", ""),
    )


@pytest.mark.parametrize("value", ["", "|", "a,"])
def test_tokens__no_system_nor_code__400_naming_the_parameter(value: str) -> None:
    with pytest.raises(RequestRefused, match="code needs a code"):
        parse_search("Observation", [("code", value)], strict=True)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("patient", "k1", "Patient/k1"),
        ("subject", "Patient/k1", "Patient/k1"),
        ("encounter", "https://ehr.example/fhir/Encounter/e.1", "Encounter/e.1"),
        ("target", "k1", "*/k1"),
    ],
)
def test_reference__forms__normalised(name: str, value: str, expected: str) -> None:
    assert parse_reference(name, value) == expected


@pytest.mark.parametrize("value", ["Patient/a_b", "Nope/k1", "x" * 65, ""])
def test_reference__not_ours__400_naming_it(value: str) -> None:
    with pytest.raises(RequestRefused, match="patient"):
        parse_reference("patient", value)


@pytest.mark.parametrize(
    ("text", "lo", "span"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=365)),
        ("2026-02", datetime(2026, 2, 1, tzinfo=UTC), timedelta(days=28)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=UTC), timedelta(days=31)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC), timedelta(days=1)),
        (
            "2026-11-20T08:40-05:00",
            datetime(2026, 11, 20, 13, 40, tzinfo=UTC),
            timedelta(minutes=1),
        ),
        ("2026-11-20T08:40:00Z", datetime(2026, 11, 20, 8, 40, tzinfo=UTC), timedelta(seconds=1)),
        (
            "2026-11-20T08:40:00.5Z",
            datetime(2026, 11, 20, 8, 40, 0, 500000, tzinfo=UTC),
            timedelta(microseconds=1),
        ),
    ],
)
def test_date_range__at_its_own_precision(text: str, lo: datetime, span: timedelta) -> None:
    assert date_range(text) == (lo, lo + span)


@pytest.mark.parametrize("prefix", ["eq", "ge", "le", "gt", "lt"])
def test_date_prefixes__parsed(prefix: str) -> None:
    bound = parse_date("date", f"{prefix}2026-11-20")
    assert bound == DateBound(prefix, *date_range("2026-11-20"))  # type: ignore[misc]


def test_date__no_prefix_is_eq__space_reads_as_plus() -> None:
    assert parse_date("date", "2026-11-20T08:40:00 05:00").prefix == "eq"
    assert parse_date("date", "2026-11-20T08:40:00 05:00").lo == datetime(
        2026, 11, 20, 3, 40, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["qq2026", "xy2026", "2026-13-01", "2026-02-30", "today"])
def test_date__unsupported_prefix_or_bad_date__400(value: str) -> None:
    with pytest.raises(RequestRefused, match="date"):
        parse_date("date", value)


def test_count__default__clamped__zero_is_count_only() -> None:
    assert parse_search("Observation", [], strict=True).count == DEFAULT_COUNT
    assert parse_search("Observation", [("_count", "99999999999")], strict=True).count == MAX_COUNT
    assert parse_search("Observation", [("_count", "0")], strict=True).only_count


def test_sort_and_includes() -> None:
    query = parse_search(
        "Observation",
        [
            ("_sort", "-date"),
            ("_include", "Observation:patient"),
            ("_revinclude", "Provenance:target:Observation"),
        ],
        strict=True,
    )
    assert (query.sort, query.descending) == ("date", True)
    assert query.includes == [Include("Observation", "patient", None)]
    assert query.revincludes == [Include("Provenance", "target", "Observation")]


def test_unknown__lenient_collects_names__strict_refuses() -> None:
    pairs = [("code:text", "x"), ("status", "final"), ("subject", "Patient/k1"), ("given", "Ana")]
    lenient = parse_search("Observation", pairs, strict=False)
    assert lenient.unknown == ["code:text", "given"]
    assert [c.param for c in lenient.criteria] == ["status", "subject"]
    with pytest.raises(RequestRefused, match="modifier 'code:text'"):
        parse_search("Observation", pairs, strict=True)


def test_unknown__name_not_a_parameter_name__not_repeated() -> None:
    with pytest.raises(RequestRefused) as refused:
        parse_search("Observation", [("Ana María <b>", "x")], strict=True)
    assert "Ana" not in str(refused.value)


def test_parameter_the_type_lacks__unknown() -> None:
    assert parse_search("Patient", [("code", "x")], strict=False).unknown == ["code"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("_total", "accurate"), ("_total", "none"), ("_totalMethod", "count")],
)
def test_total__r4_and_fhirpy_forms__taken_under_strict(name: str, value: str) -> None:
    query = parse_search("Observation", [(name, value), ("_count", "0")], strict=True)
    assert query.only_count
    assert query.unknown == []


@pytest.mark.parametrize(("name", "value"), [("_total", "exact"), ("_totalMethod", "")])
def test_total__other_value__400_naming_the_parameter(name: str, value: str) -> None:
    with pytest.raises(RequestRefused, match=name):
        parse_search("Observation", [(name, value)], strict=True)


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        (
            "0001-01-01T00:03:00+02:00",
            datetime.min.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC) + timedelta(seconds=1),
        ),
        ("9999-12-31T23:00:00-05:00", datetime.max.replace(tzinfo=UTC), None),
        ("9999-12", datetime(9999, 12, 1, tzinfo=UTC), None),
        ("9999", datetime(9999, 1, 1, tzinfo=UTC), None),
    ],
)
def test_date_range__beyond_years_1_to_9999_in_utc__cut_at_the_ends(
    text: str, lo: datetime, hi: datetime | None
) -> None:
    found = date_range(text)
    assert found is not None
    assert found[0] == lo
    assert found[1] == (hi or datetime.max.replace(tzinfo=UTC))


def test_date_range__not_a_calendar_date__none() -> None:
    assert date_range("2026-02-30") is None
