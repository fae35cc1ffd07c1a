"""A `/fhir/{type}` search query string as a `SearchQuery`: criteria, paging, sort, includes.

Values of one parameter separated by `,` are alternatives (OR); repeating a parameter
narrows (AND). A parameter, modifier, chain or prefix this server does not support for
the type is refused with 400 naming it (strict, the default: ignoring it would widen a
search over behavioural-health data), or, under `Prefer: handling=lenient`, left out and
reported. A supported parameter with a value that cannot be one (a bad date, an id outside
the FHIR id pattern) is always 400, naming the parameter; the message never repeats the
value (it may be an identifier of a patient). Each parameter's own syntax is
adapter.api.fhir.criteria's.
"""

from __future__ import annotations

from adapter.api.fhir.common import SERVED_TYPES
from adapter.api.fhir.criteria import (
    REFERENCE_TARGETS as REFERENCE_TARGETS,  # re-exported
)
from adapter.api.fhir.criteria import criterion, kind_of, parse_date, parse_reference, shown
from adapter.api.fhir.paging import CURSOR_PARAMETER
from adapter.errors import RequestRefused
from adapter.store.search import Include, SearchQuery
from adapter.store.search_index import PARAMETERS

MAX_COUNT = 1000
SORTS = ("_lastUpdated", "date")
SUMMARIES = ("true", "text", "data", "count", "false")
# `_total` (R4) and `_totalMethod` (what fhirpy's `count()` sends): how exact the total may
# be. Ours is always exact (counted under the read's time budget), which every value allows.
TOTALS = {"_total": ("none", "estimate", "accurate"), "_totalMethod": ("count", "estimate", "none")}
_RESULT_PARAMETERS = (
    "_count",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_format",
    *TOTALS,
)
_IGNORED = (CURSOR_PARAMETER, "_format")
# Every parameter name a search reads (before any modifier or chain).
KNOWN_PARAMETERS = (*_RESULT_PARAMETERS, *_IGNORED, "_id", "_lastUpdated", "_has", *PARAMETERS)
__all__ = ["parse_date", "parse_reference", "shown"]


def parse_search(resource_type: str, pairs: list[tuple[str, str]], *, strict: bool) -> SearchQuery:
    """The query for `pairs` (the query string, in order); 400 on what cannot be served."""
    query = SearchQuery(resource_type)
    for name, raw in pairs:
        if name in _IGNORED:
            continue
        if name in _RESULT_PARAMETERS:
            _result_parameter(query, name, raw)
            continue
        found = criterion(resource_type, name, raw)
        if isinstance(found, str):
            if strict:
                raise RequestRefused(found)
            query.unknown.append(name)
            continue
        query.criteria.append(found)
    return query


def _result_parameter(query: SearchQuery, name: str, raw: str) -> None:
    if name == "_count":
        query.count = parse_count(raw)
        query.only_count = query.only_count or query.count == 0
    elif name == "_summary":
        if raw not in SUMMARIES:
            raise RequestRefused(f"_summary is one of {', '.join(SUMMARIES)}")
        query.only_count = raw == "count"
        query.summary = None if raw in ("false", "count") else raw
    elif name == "_elements":
        query.elements = parse_elements(raw)
    elif name in TOTALS:
        if raw not in TOTALS[name]:
            raise RequestRefused(f"{name} is one of {', '.join(TOTALS[name])}")
    elif name == "_sort":
        field_name = raw.removeprefix("-")
        if field_name not in SORTS:
            raise RequestRefused("_sort: only _lastUpdated or date, with - for descending")
        query.sort, query.descending = field_name, raw.startswith("-")
    else:
        include = parse_include(name, raw)
        (query.includes if name == "_include" else query.revincludes).append(include)


def parse_count(raw: str) -> int:
    """`_count`, clamped to `MAX_COUNT`."""
    # ASCII only: `"²".isdigit()` holds, but `int("²")` fails.
    if not (raw.isascii() and raw.isdigit()):
        raise RequestRefused("_count is not a non-negative integer")
    return min(int(raw[:9]), MAX_COUNT)


def parse_elements(raw: str) -> tuple[str, ...]:
    """`_elements`: top-level element names (`a,b`), each an element name's shape."""
    names = tuple(name.strip() for name in raw.split(","))
    if not all(name.isascii() and name.isalpha() for name in names):
        raise RequestRefused("_elements is a comma-separated list of element names")
    return names


def parse_include(name: str, raw: str) -> Include:
    """`Source:param[:Target]`, where `param` is a reference parameter of `Source`."""
    source, _, rest = raw.partition(":")
    param, _, target = rest.partition(":")
    kind = kind_of(source, param) if source in SERVED_TYPES else None
    if kind != "reference" or (target and target not in SERVED_TYPES):
        raise RequestRefused(f"{name}: not a reference parameter this server follows")
    return Include(source, param, target or None)
