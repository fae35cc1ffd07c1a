"""The FHIR search index: the search parameters' values of each current resource, as rows.

Search must not scan JSON, so every write of a resource (`reindex`) replaces its rows in
the same transaction, and a tombstone removes them (`unindex`). What each parameter reads,
per type, is adapter.store.search_parameters.TABLE; the API's search answers from these
rows only.

    token      (system, value): an Identifier's, a Coding's, a code, a boolean
    string     value: the text normalised (case, accents), system: as written (`:exact`)
    reference  value `Type/id` (of any version: a versioned `Type/id/_history/n` is
               indexed as `Type/id`, as FHIR search matches it); a Reference's
               `identifier` as a token row of `{param}:identifier`
    date       [date_lo, date_hi) in UTC
    REFERENCES every reference in the resource, for `$everything` (never a search parameter)
    CANONICAL  the canonical `url` of a definitional resource (our REMS Questionnaire), so
               that `_include` finds what a canonical element names (never a search parameter)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete

from adapter.store.bulk import insert_many
from adapter.store.schema import search_index
from adapter.store.search_parameters import REFERENCE_TYPES, TABLE

REFERENCES = "~ref"
CANONICAL = "~url"
# The types whose `url` a canonical element of another resource names.
CANONICAL_TYPES = ("Questionnaire",)
# The row of a reference parameter's `Reference.identifier` (`patient:identifier`).
IDENTIFIER_SUFFIX = ":identifier"


def _by_name() -> dict[str, tuple[str, dict[str, tuple[str, ...]]]]:
    table: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {}
    for resource_type, params in TABLE.items():
        for name, (kind, paths) in params.items():
            table.setdefault(name, (kind, {}))[1][resource_type] = paths
    return table


# param -> (kind, {type: paths}) of adapter.store.search_parameters.TABLE: a type not
# listed under a parameter does not have it (the CapabilityStatement says so too).
PARAMETERS = _by_name()

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


# A time's range by its precision (the length of `hh:mm`, `hh:mm:ss`); else one microsecond.
_STEPS = {5: timedelta(minutes=1), 8: timedelta(seconds=1)}
_FINEST = timedelta(microseconds=1)


@dataclass(frozen=True)
class IndexRow:
    param: str
    system: str | None = None
    value: str | None = None
    date_lo: datetime | None = None
    date_hi: datetime | None = None


def paths_for(param: str, resource_type: str) -> tuple[str, ...]:
    """Where `param` reads in a `resource_type` (empty: the type has no such parameter)."""
    kind_paths = PARAMETERS.get(param)
    return () if kind_paths is None else kind_paths[1].get(resource_type, ())


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """A FHIR date/dateTime/instant as its UTC range [lo, hi) at its own precision; None for
    what is not a calendar date. A range reaching past years 1-9999 once in UTC (a valid
    `0001-01-01T00:03:00+02:00`, say) is cut at the ends of what can be represented."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    try:
        return _utc_range(match)
    except ValueError:
        return None  # not a calendar date (Feb 30, hour 25)


def _utc_range(match: re.Match[str]) -> tuple[datetime, datetime]:
    year, month, day = int(match["y"]), int(match["m"] or 1), int(match["d"] or 1)
    if match["time"] is None:
        lo = datetime(year, month, day, tzinfo=UTC)
        if match["d"]:
            return lo, _later(lo, timedelta(days=1))
        if match["m"]:
            return lo, _next_month(lo)
        return lo, _LATEST if year == datetime.max.year else lo.replace(year=year + 1)
    stamp = f"{match['y']}-{match['m']}-{match['d']}T{match['time']}"
    offset = match["tz"] or "Z"
    local = datetime.fromisoformat(stamp + offset.replace("Z", "+00:00"))
    try:
        moment = local.astimezone(UTC)
    except OverflowError:
        moment = _EARLIEST if local.year == datetime.min.year else _LATEST
    return moment, _later(moment, _STEPS.get(len(match["time"]), _FINEST))


def _later(moment: datetime, step: timedelta) -> datetime:
    try:
        return moment + step
    except OverflowError:
        return _LATEST


def _next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        if moment.year == datetime.max.year:
            return _LATEST
        return moment.replace(year=moment.year + 1, month=1)
    return moment.replace(month=moment.month + 1)


def index_rows(
    resource_type: str, content: dict[str, Any], references: Iterable[str] | None = None
) -> list[IndexRow]:
    """The index rows of one resource (duplicates removed). `references`, when the caller
    has them already, are the resource's `reference` strings (saves walking it again)."""
    return [IndexRow(*entry) for entry in _entries(resource_type, content, references)]


# (param, system, value, date_lo, date_hi): an IndexRow as a plain tuple. The pull indexes
# thousands of resources a page; tuples hash and compare in C, dataclasses do not.
_Entry = tuple[str, str | None, str | None, datetime | None, datetime | None]


def _entries(
    resource_type: str, content: dict[str, Any], references: Iterable[str] | None
) -> list[_Entry]:
    found: list[_Entry] = []
    for param, kind, steps in _plan(resource_type):
        for value in _walk(content, steps):
            if kind == "token":
                _tokens(found, param, value)
            elif kind == "reference":
                _reference(found, param, value)
            elif kind == "string":
                _strings(found, param, value)
            else:
                _dates(found, param, value)
    url = content.get("url")
    if resource_type in CANONICAL_TYPES and isinstance(url, str):
        found.append((CANONICAL, None, url, None, None))
    cited = _references(content) if references is None else references
    for ref in {unversioned(ref) for ref in cited}:
        if ref.count("/") == 1:
            found.append((REFERENCES, None, ref, None, None))
    return list(dict.fromkeys(found))


def unversioned(reference: str) -> str:
    """`Type/id` of a versioned reference (`Type/id/_history/n`), else the reference."""
    head, marker, _ = reference.partition("/_history/")
    return head if marker else reference


@functools.cache
def _plan(resource_type: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(parameter, kind, path steps) of every parameter the type has, in PARAMETERS order."""
    return tuple(
        (param, kind, tuple(path.split(".")))
        for param, (kind, _) in PARAMETERS.items()
        for path in paths_for(param, resource_type)
    )


def _walk(node: Any, steps: tuple[str, ...]) -> list[Any]:
    """What a dotted path reaches, in document order: each step, and the end, may be a list;
    a last step `name[key=value]` keeps the items whose `key` is `value`."""
    last, _, where = steps[-1].partition("[")
    if where:
        key, _, wanted = where.rstrip("]").partition("=")
        reached = _walk(node, (*steps[:-1], last))
        return [item for item in reached if isinstance(item, dict) and item.get(key) == wanted]
    if len(steps) == 1 and isinstance(node, dict):  # most paths: one element
        if steps[0] not in node:
            return []
        found = node[steps[0]]
        return found if isinstance(found, list) else [found]
    nodes = [node]
    for step in steps:
        nodes = [
            item[step]
            for each in nodes
            for item in (each if isinstance(each, list) else (each,))
            if isinstance(item, dict) and step in item
        ]
    return [item for each in nodes for item in (each if isinstance(each, list) else (each,))]


def _tokens(found: list[_Entry], param: str, value: Any) -> None:
    if isinstance(value, bool):
        found.append((param, None, "true" if value else "false", None, None))
        return
    if isinstance(value, str):
        found.append((param, None, value, None, None))
        return
    if not isinstance(value, dict):
        return
    if isinstance(value.get("value"), str):  # an Identifier, a ContactPoint
        found.append((param, _text(value.get("system")), value["value"], None, None))
    if isinstance(value.get("code"), str):  # a Coding
        found.append((param, _text(value.get("system")), value["code"], None, None))
    codings = value.get("coding")
    for coding in codings if isinstance(codings, list) else ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            found.append((param, _text(coding.get("system")), coding["code"], None, None))


def _reference(found: list[_Entry], param: str, value: Any) -> None:
    """`Type/id` of a Reference (only of `REFERENCE_TYPES[param]`, when named there), its
    `identifier` as a token row of `{param}:identifier`; a canonical (a string) as is."""
    if isinstance(value, str):
        found.append((param, None, value, None, None))
        return
    if not isinstance(value, dict):
        return
    ref, only = value.get("reference"), REFERENCE_TYPES.get(param)
    if isinstance(ref, str) and (only is None or ref.startswith(f"{only}/")):
        found.append((param, None, unversioned(ref), None, None))
    identifier = value.get("identifier")
    if only is None and isinstance(identifier, dict):
        _tokens(found, param + IDENTIFIER_SUFFIX, identifier)


# The parts of a HumanName or an Address a string parameter on the whole of it matches.
_STRING_PARTS = ("text", "family", "given", "prefix", "suffix", "line", "city", "district")
_STRING_PARTS_MORE = ("state", "postalCode", "country")


def _strings(found: list[_Entry], param: str, value: Any) -> None:
    """A string's rows: `value` normalised (see `normalised`), `system` as written
    (for `:exact`); a HumanName or an Address gives one row per part."""
    if isinstance(value, str):
        found.append((param, value[:512], normalised(value)[:512], None, None))
    elif isinstance(value, dict):
        for part in (*_STRING_PARTS, *_STRING_PARTS_MORE):
            text = value.get(part)
            for item in text if isinstance(text, list) else (text,):
                if isinstance(item, str):
                    found.append((param, item[:512], normalised(item)[:512], None, None))


def normalised(text: str) -> str:
    """What a string search compares: case and accents ignored (R4's default matching)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _dates(found: list[_Entry], param: str, value: Any) -> None:
    if isinstance(value, str):
        bounds = date_range(value)
        if bounds:
            found.append((param, None, None, bounds[0], bounds[1]))
    elif isinstance(value, dict):  # a Period: open ends reach as far as can be stored
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        lo = start[0] if start else datetime(1, 1, 1, tzinfo=UTC)
        hi = end[1] if end else datetime(9999, 12, 31, tzinfo=UTC)
        if start or end:
            found.append((param, None, None, lo, hi))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# A `"reference":"..."` member of compact JSON. Only a member can match: inside a string
# every quote is escaped. A value holding an escape is left out: no reference we make has one.
_REFERENCE_MEMBER = re.compile(r'"reference":"([^"\\]*)"')


def references_in(text: str) -> list[str]:
    """The `reference` strings of a resource's compact JSON text (`mappings.dumps`), read
    without parsing it: for what the mappings make, what walking the object finds."""
    return _REFERENCE_MEMBER.findall(text)


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def reindex(
    conn: Connection, pk: int, tenant: str, resource_type: str, content: dict[str, Any]
) -> None:
    """Replace the index rows of resource `pk` by those of `content`."""
    unindex(conn, pk)
    insert_many(conn, search_index, INDEX_COLUMNS, index_values(pk, tenant, resource_type, content))


# The `search_index` columns `index_values` gives, in its order.
INDEX_COLUMNS = (
    "resource_pk",
    "tenant",
    "resource_type",
    "param",
    "system",
    "value",
    "date_lo",
    "date_hi",
)


def index_values(
    pk: int,
    tenant: str,
    resource_type: str,
    content: dict[str, Any],
    references: Iterable[str] | None = None,
) -> list[tuple[Any, ...]]:
    """The `search_index` rows (INDEX_COLUMNS) of a new resource `pk`, to insert many at once
    (`adapter.store.bulk.insert_many`)."""
    return [
        (pk, tenant, resource_type, *entry)
        for entry in _entries(resource_type, content, references)
    ]


def unindex(conn: Connection, pk: int) -> None:
    conn.execute(delete(search_index).where(search_index.c.resource_pk == pk))
