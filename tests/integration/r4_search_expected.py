"""What the sandbox refuses, or answers otherwise than R4, of the searches that
tests/integration/test_fhir_r4_search_on_sandbox.py runs, and for those the ids R4's
meaning gives, computed from the resources themselves (the elements each parameter reads
are adapter.store.search_parameters.TABLE's, which the comparisons with the sandbox check
for every other query)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapter.store.search_index import date_range, normalised
from adapter.store.search_parameters import TABLE
from tests.integration.r4_search_data import Pushed

# What the sandbox (HAPI FHIR 8.8 JPA, as sandbox/ configures it) refuses, though R4 defines
# it, or answers otherwise than R4: those queries are checked against ids computed from the
# resources instead.
HAPI_REFUSES = {
    "identifier": "HAPI refuses the :identifier modifier on references (HAPI-2498)",
    "contains": "the sandbox keeps HAPI's default of :contains disabled (HAPI-1258)",
    "ap": "HAPI refuses the ap prefix on date parameters (HAPI-1925: Unknown comparator)",
    "year": "HAPI finds nothing for ge or le at a year's precision (ge2026), though R4's"
    " ranges make ge2026 every date in or after 2026",
}
_YEAR = re.compile(r"(ge|le)\d{4}")


def refused_by_hapi(
    pushed: Pushed, resource_type: str, name: str, value: str
) -> tuple[str, frozenset[str]] | None:
    """Why HAPI's answer to `name=value` cannot be the measure, and the ids R4 gives for it;
    None: HAPI's answer is."""
    param, _, modifier = name.partition(":")
    refused = modifier if modifier in HAPI_REFUSES else value[:2]
    if _YEAR.fullmatch(value):
        refused = "year"
    if refused not in HAPI_REFUSES:
        return None
    test = _EXPECTED[refused](param, value)
    expected = pushed.where(resource_type, _holding(resource_type, param, test))
    return HAPI_REFUSES[refused], expected


def _holding(
    resource_type: str, param: str, test: Callable[[Any], bool]
) -> Callable[[dict[str, Any]], bool]:
    """Whether an element the parameter reads (its paths in TABLE) passes `test`."""
    paths = TABLE[resource_type][param][1]
    return lambda res: any(test(item) for path in paths for item in _walk(res, path))


def _walk(node: Any, path: str) -> list[Any]:
    """The elements a dotted path reaches (each step may be a list)."""
    nodes = [node]
    for step in path.split("."):
        nodes = [
            found
            for each in nodes
            if isinstance(each, dict) and step in each
            for found in (each[step] if isinstance(each[step], list) else [each[step]])
        ]
    return nodes


def _by_identifier(param: str, value: str) -> Callable[[Any], bool]:
    """A Reference whose own `identifier` is `system|value` (R4 `:identifier`)."""
    del param
    system, _, code = value.partition("|")

    def test(reference: Any) -> bool:
        held = reference.get("identifier") if isinstance(reference, dict) else None
        return isinstance(held, dict) and (held.get("system"), held.get("value")) == (system, code)

    return test


_TEXT_PARTS = ("text", "family", "given", "prefix", "suffix", "line", "city", "district")
_MORE_PARTS = ("state", "postalCode", "country")


def _containing(param: str, value: str) -> Callable[[Any], bool]:
    """A string, or a part of a HumanName or an Address, holding `value` anywhere (case and
    accents aside)."""
    del param
    needle = normalised(value)

    def texts(item: Any) -> list[str]:
        if isinstance(item, str):
            return [item]
        parts = (
            [item.get(p) for p in (*_TEXT_PARTS, *_MORE_PARTS)] if isinstance(item, dict) else []
        )
        return [t for p in parts for t in (p if isinstance(p, list) else [p]) if isinstance(t, str)]

    return lambda item: any(needle in normalised(text) for text in texts(item))


def _approximately(param: str, value: str) -> Callable[[Any], bool]:
    """A date or Period meeting the value's range widened by a tenth of its distance from
    now (R4 leaves `ap`'s margin to the server; this is the one docs/fhir-api.md gives)."""
    del param
    lo, hi = _range(value[2:])
    margin = abs(datetime.now(UTC) - lo) / 10
    return _meeting(lo - margin, hi + margin)


def _in_or_after_year(param: str, value: str) -> Callable[[Any], bool]:
    """`ge{year}`: some of the date on or after the year's start; `le{year}`: some of it on
    or before its end."""
    del param
    lo, hi = _range(value[2:])
    if value.startswith("ge"):
        return _meeting(lo, datetime.max.replace(tzinfo=UTC))
    return _meeting(datetime.min.replace(tzinfo=UTC), hi)


def _meeting(lo: datetime, hi: datetime) -> Callable[[Any], bool]:
    """A date or Period some of which is in [lo, hi)."""

    def test(item: Any) -> bool:
        if isinstance(item, str):
            start, end = _range(item)
        elif isinstance(item, dict) and ("start" in item or "end" in item):
            start = (
                _range(item["start"])[0] if "start" in item else datetime.min.replace(tzinfo=UTC)
            )
            end = _range(item["end"])[1] if "end" in item else datetime.max.replace(tzinfo=UTC)
        else:
            return False
        return start < hi and end > lo

    return test


def _range(text: str) -> tuple[datetime, datetime]:
    found = date_range(text)
    assert found is not None, text
    return found


_EXPECTED: dict[str, Callable[[str, str], Callable[[Any], bool]]] = {
    "identifier": _by_identifier,
    "contains": _containing,
    "ap": _approximately,
    "year": _in_or_after_year,
}
