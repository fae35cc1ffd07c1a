"""A `/fhir/{type}` search query string as a `SearchQuery`: criteria, paging, sort, includes.

Values of one parameter separated by `,` are alternatives (OR); repeating a parameter
narrows (AND). A parameter this server does not support for the type (or any modifier,
`code:text` say) is *unknown*: it is left out and reported, or refused under
`Prefer: handling=strict`. A supported parameter with a value that cannot be one (a bad
date, an unsupported prefix, an id outside the FHIR id pattern) is always 400, naming the
parameter; the message never repeats the value (it may be an identifier of a patient).
"""

from __future__ import annotations

import re

from adapter.api.fhir_common import ID_PATTERN, SERVED_TYPES
from adapter.api.fhir_paging import CURSOR_PARAMETER
from adapter.errors import RequestRefused
from adapter.store.search import Criterion, DateBound, Include, SearchQuery, Token
from adapter.store.search_index import PARAMETERS, date_range, paths_for

MAX_COUNT = 1000
PREFIXES = ("eq", "ge", "le", "gt", "lt")
SORTS = ("_lastUpdated", "date")
# Reference parameters `_include`/`_revinclude` follow, and the type a bare id names.
REFERENCE_TARGETS = {"patient": "Patient", "subject": "Patient", "encounter": "Encounter"}
_RESULT_PARAMETERS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_format")
_IGNORED = (CURSOR_PARAMETER, "_format")
# Every parameter name a search reads; any other is unknown (ignored, or 400 when strict).
KNOWN_PARAMETERS = (*_RESULT_PARAMETERS, *_IGNORED, "_id", "_lastUpdated", *PARAMETERS)
# FHIR search parameter names begin with a lower-case letter (`patient`, `code:text`,
# `_lastUpdated`); anything else a caller typed there (an MRN...) is not repeated back.
_NAME = re.compile(r"_?[a-z][A-Za-z0-9\-]{0,63}(:[A-Za-z\-]{1,32})?(\.[A-Za-z\-]{1,32})?")


def parse_search(resource_type: str, pairs: list[tuple[str, str]], *, strict: bool) -> SearchQuery:
    """The query for `pairs` (the query string, in order); 400 on what cannot be served."""
    query = SearchQuery(resource_type)
    for name, raw in pairs:
        if name in _IGNORED:
            continue
        if name in _RESULT_PARAMETERS:
            _result_parameter(query, name, raw)
            continue
        kind = _kind(resource_type, name)
        if kind is None:
            if strict:
                raise RequestRefused(f"unknown search parameter {shown(name)} for {resource_type}")
            query.unknown.append(name)
            continue
        values = tuple(_value(name, kind, part) for part in raw.split(","))
        query.criteria.append(Criterion(name, kind, values))
    return query


def _kind(resource_type: str, name: str) -> str | None:
    if name in ("_id", "_lastUpdated"):
        return "id" if name == "_id" else "date"
    if name not in PARAMETERS or not paths_for(name, resource_type):
        return None
    return PARAMETERS[name][0]


def _value(name: str, kind: str, part: str) -> Token | DateBound | str:
    if kind == "date":
        return parse_date(name, part)
    if kind == "token":
        system, bar, code = part.partition("|")
        if not (code if bar else system):
            raise RequestRefused(f"{name} needs a code (system|code or code)")
        return Token(system, code) if bar else Token(None, system)
    if kind == "reference":
        return parse_reference(name, part)
    if not ID_PATTERN.fullmatch(part):
        raise RequestRefused(f"{name} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")
    return part


def parse_date(name: str, part: str) -> DateBound:
    """`[prefix]date`: eq (default), ge, le, gt, lt, over the date's own precision."""
    prefix = part[:2] if part[:2].isalpha() else "eq"
    text = part[2:] if part[:2].isalpha() else part
    if prefix not in PREFIXES:
        raise RequestRefused(f"{name}: prefix {prefix!r} is not supported (eq, ge, le, gt, lt)")
    # An unencoded `+` of a time zone offset reads as a space.
    bounds = date_range(text.replace(" ", "+"))
    if bounds is None:
        raise RequestRefused(f"{name} is not a FHIR date or dateTime")
    return DateBound(prefix, *bounds)


def parse_reference(name: str, part: str) -> str:
    """`Type/id`, a URL ending in one, or a bare id: the `Type/id` (or `*/id`) to match."""
    segments = part.rstrip("/").split("/")
    logical_id = segments[-1]
    resource_type = segments[-2] if len(segments) >= 2 else REFERENCE_TARGETS.get(name, "*")
    if not ID_PATTERN.fullmatch(logical_id) or (
        resource_type != "*" and resource_type not in SERVED_TYPES
    ):
        raise RequestRefused(f"{name} is not a reference to a resource of this server")
    return f"{resource_type}/{logical_id}"


def _result_parameter(query: SearchQuery, name: str, raw: str) -> None:
    if name == "_count":
        query.count = parse_count(raw)
        query.only_count = query.only_count or query.count == 0
    elif name == "_summary":
        if raw not in ("count", "false"):
            raise RequestRefused("_summary: only count (or false) is supported")
        query.only_count = raw == "count"
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


def shown(name: str) -> str:
    """A parameter's name as an answer may repeat it: only when it looks like one."""
    return repr(name) if _NAME.fullmatch(name) else "(a parameter with an unusual name)"


def parse_include(name: str, raw: str) -> Include:
    """`Source:param[:Target]`, where `param` is a reference parameter of `Source`."""
    source, _, rest = raw.partition(":")
    param, _, target = rest.partition(":")
    kind = _kind(source, param) if source in SERVED_TYPES else None
    if kind != "reference" or (target and target not in SERVED_TYPES):
        raise RequestRefused(f"{name}: not a reference parameter this server follows")
    return Include(source, param, target or None)
