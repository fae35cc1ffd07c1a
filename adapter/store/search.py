"""FHIR search over the search index: one page of matches, their total, and includes.

Paging is by keyset, never by offset: a page starts after (or, going back, before) the
sort key and primary key of a row of the page before. Every page of one search is bounded
by the `Snapshot` taken at its first page: resources created since (primary key above the
snapshot's) are left out, and when sorting by a value an update can change (`_lastUpdated`,
`date`), so are resources updated since. So no resource appears twice, and none that was
there at the first page and is unchanged is missed, whatever is written meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    false,
    func,
    or_,
    select,
    true,
)

from adapter.store.schema import resources, search_index

DEFAULT_COUNT = 50
_HIGHEST_PK = select(func.max(resources.c.pk))
# Criteria on the resource row itself; every other one goes through the index (`_has`).
_RESOURCE_SIDE = ("_id", "_lastUpdated")
# What a `date` sort puts resources without a date at: first.
_NO_DATE = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Token:
    """`system|code` (`system` "" for `|code`, None for a bare `code`)."""

    system: str | None
    code: str


@dataclass(frozen=True)
class DateBound:
    """A date parameter's prefix and the range [lo, hi) its value covers."""

    prefix: str
    lo: datetime
    hi: datetime


@dataclass(frozen=True)
class Criterion:
    """One occurrence of a parameter: its alternatives (OR)."""

    param: str
    kind: str
    values: tuple[Token | DateBound | str, ...]


@dataclass(frozen=True)
class Include:
    """`_include`/`_revinclude` of `Source:param[:Target]`."""

    source: str
    param: str
    target: str | None


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: str | None = None
    descending: bool = False
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    only_count: bool = False
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    """The store as of a search's first page: its highest resource key, and the time."""

    pk: int
    at: datetime


@dataclass(frozen=True)
class Found:
    pk: int
    resource_type: str
    logical_id: str
    version: int
    content: str
    last_updated: datetime
    sort_key: Any = None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.logical_id}"


@dataclass(frozen=True)
class Position:
    """Where a page starts: after (`forward`) or before the row (`sort_key`, `pk`)."""

    sort_key: Any
    pk: int
    forward: bool = True


def take_snapshot(conn: Connection, now: datetime) -> Snapshot:
    highest = conn.execute(_HIGHEST_PK).scalar_one_or_none()
    return Snapshot(int(highest or 0), now)


def page(
    conn: Connection,
    tenant: str,
    query: SearchQuery,
    snapshot: Snapshot,
    position: Position | None,
) -> list[Found]:
    """Up to `query.count + 1` matches from `position` on (one more tells there is a next)."""
    sort = _sort_column(query.sort)
    columns = (*FOUND_COLUMNS, sort.label("sort_key"))
    statement = select(*columns).where(*_matching(tenant, query, snapshot))
    forward = position is None or position.forward
    ascending = (not query.descending) == forward
    if position is not None:
        key = sort_value(position.sort_key) if query.sort else position.pk
        statement = statement.where(_beyond(sort, key, position.pk, ascending))
    order = (sort, resources.c.pk) if ascending else (sort.desc(), resources.c.pk.desc())
    rows = [_found(row) for row in conn.execute(statement.order_by(*order).limit(query.count + 1))]
    return rows if forward else rows[::-1]


def total(conn: Connection, tenant: str, query: SearchQuery, snapshot: Snapshot) -> int:
    counted = select(func.count()).select_from(resources)
    return int(conn.execute(counted.where(*_matching(tenant, query, snapshot))).scalar_one())


def included(
    conn: Connection, tenant: str, matches: Sequence[Found], includes: Iterable[Include]
) -> list[Found]:
    """The resources `matches` refer to through each `_include` (not already in `matches`)."""
    wanted: set[str] = set()
    for include in includes:
        pks = [found.pk for found in matches if found.resource_type == include.source]
        if not pks:
            continue
        values = conn.execute(
            select(search_index.c.value).where(
                search_index.c.resource_pk.in_(pks), search_index.c.param == include.param
            )
        ).scalars()
        wanted |= {v for v in values if include.target is None or v.startswith(include.target)}
    return by_reference(conn, tenant, wanted - {found.reference for found in matches})


def revincluded(
    conn: Connection, tenant: str, matches: Sequence[Found], revincludes: Iterable[Include]
) -> list[Found]:
    """The resources that refer to `matches` through each `_revinclude`."""
    seen = {found.pk for found in matches}
    out: list[Found] = []
    for include in revincludes:
        refs = [
            found.reference
            for found in matches
            if include.target is None or found.resource_type == include.target
        ]
        if not refs:
            continue
        statement = select(*FOUND_COLUMNS).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == include.source,
            resources.c.deleted.is_(False),
            _has((tenant, include.source, include.param), search_index.c.value.in_(refs)),
        )
        for row in conn.execute(statement.order_by(resources.c.pk)):
            if row.pk not in seen:
                seen.add(row.pk)
                out.append(_found(row))
    return out


def by_reference(conn: Connection, tenant: str, references: Iterable[str]) -> list[Found]:
    """The current, undeleted resources named `Type/id` of `tenant`, by primary key."""
    by_type: dict[str, list[str]] = {}
    for reference in references:
        resource_type, _, logical_id = reference.partition("/")
        by_type.setdefault(resource_type, []).append(logical_id)
    found: list[Found] = []
    for resource_type, ids in by_type.items():
        statement = select(*FOUND_COLUMNS).where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.logical_id.in_(ids),
            resources.c.deleted.is_(False),
        )
        found.extend(_found(row) for row in conn.execute(statement))
    return sorted(found, key=lambda item: item.pk)


def sort_value(key: Any) -> datetime:
    """A sort key from a paging token (ISO text) or the store (naive on SQLite), in UTC."""
    moment = datetime.fromisoformat(key) if isinstance(key, str) else key
    if not isinstance(moment, datetime):
        raise ValueError("not a sort key")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


FOUND_COLUMNS = (
    resources.c.pk,
    resources.c.resource_type,
    resources.c.logical_id,
    resources.c.version,
    resources.c.content,
    resources.c.last_updated,
)


def _found(row: Any) -> Found:
    sort_key = getattr(row, "sort_key", None)
    return Found(
        row.pk,
        row.resource_type,
        row.logical_id,
        row.version,
        row.content,
        row.last_updated,
        sort_key,
    )


def _sort_column(sort: str | None) -> ColumnElement[Any]:
    if sort == "_lastUpdated":
        return resources.c.last_updated
    if sort == "date":
        earliest = (
            select(func.min(search_index.c.date_lo))
            .where(search_index.c.resource_pk == resources.c.pk, search_index.c.param == "date")
            .scalar_subquery()
        )
        return func.coalesce(earliest, _NO_DATE, type_=resources.c.last_updated.type)
    return resources.c.pk


def _beyond(sort: ColumnElement[Any], key: Any, pk: int, ascending: bool) -> ColumnElement[bool]:
    if ascending:
        return or_(sort > key, and_(sort == key, resources.c.pk > pk))
    return or_(sort < key, and_(sort == key, resources.c.pk < pk))


def _matching(tenant: str, query: SearchQuery, snapshot: Snapshot) -> list[ColumnElement[bool]]:
    tenant_column: ColumnElement[str] = resources.c.tenant
    type_column: ColumnElement[str] = resources.c.resource_type
    if any(criterion.param not in _RESOURCE_SIDE for criterion in query.criteria):
        # The index subqueries (see `_has`) name the tenant and type themselves and hold
        # few rows; checked as plain columns here, they would let SQLite (no statistics)
        # walk every resource of the type by the (tenant, type) index instead, 10x slower
        # at 300 encounters and growing with the store. `coalesce` of these NOT NULL
        # columns is the column itself, still checked, but no index can drive from it.
        tenant_column = func.coalesce(tenant_column, "")
        type_column = func.coalesce(type_column, "")
    conditions: list[ColumnElement[bool]] = [
        tenant_column == tenant,
        type_column == query.resource_type,
        resources.c.deleted.is_(False),
        resources.c.pk <= snapshot.pk,
    ]
    if query.sort is not None:
        conditions.append(resources.c.last_updated <= snapshot.at)
    of = (tenant, query.resource_type)
    conditions.extend(_criterion(of, criterion) for criterion in query.criteria)
    return conditions


def _criterion(of: tuple[str, str], criterion: Criterion) -> ColumnElement[bool]:
    if criterion.param == "_id":
        return resources.c.logical_id.in_([str(v) for v in criterion.values])
    if criterion.param == "_lastUpdated":
        return or_(*(_instant(resources.c.last_updated, v) for v in _bounds(criterion)))
    alternatives = [_value_matches(criterion.kind, value) for value in criterion.values]
    return _has((*of, criterion.param), or_(*alternatives))


def _has(where: tuple[str, str, str], condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The resource has a `where` = (tenant, type, param) index row meeting `condition`.

    An `IN` over the index, not a correlated `EXISTS`: the database then starts from the
    index's (tenant, type, param, value) rows instead of testing every resource of the type.
    """
    tenant, resource_type, param = where
    rows = select(search_index.c.resource_pk).where(
        search_index.c.tenant == tenant,
        search_index.c.resource_type == resource_type,
        search_index.c.param == param,
        condition,
    )
    return resources.c.pk.in_(rows)


def _value_matches(kind: str, value: Token | DateBound | str) -> ColumnElement[bool]:
    column = search_index.c
    if isinstance(value, Token):
        code = column.value == value.code
        if value.system is None:
            return code
        return and_(
            code, column.system.is_(None) if not value.system else column.system == value.system
        )
    if isinstance(value, DateBound):
        return _range(column.date_lo, column.date_hi, value)
    if value.startswith("*/"):
        return column.value.like(f"%/{value[2:]}")
    return column.value == value


def _bounds(criterion: Criterion) -> list[DateBound]:
    return [v for v in criterion.values if isinstance(v, DateBound)]


def _range(
    lo: ColumnElement[datetime], hi: ColumnElement[datetime], bound: DateBound
) -> ColumnElement[bool]:
    """A stored range [lo, hi) against a parameter's range, per FHIR's prefix rules."""
    if bound.prefix == "eq":
        return and_(lo >= bound.lo, hi <= bound.hi)
    if bound.prefix == "ge":
        return hi > bound.lo
    if bound.prefix == "le":
        return lo < bound.hi
    if bound.prefix == "gt":
        return hi > bound.hi
    if bound.prefix == "lt":
        return lo < bound.lo
    return false()


def _instant(column: ColumnElement[datetime], bound: DateBound) -> ColumnElement[bool]:
    """A stored instant against a parameter's range."""
    if bound.prefix == "eq":
        return and_(column >= bound.lo, column < bound.hi)
    if bound.prefix == "ge":
        return column >= bound.lo
    if bound.prefix == "le":
        return column < bound.hi
    if bound.prefix == "gt":
        return column >= bound.hi
    if bound.prefix == "lt":
        return column < bound.lo
    return true()


__all__ = [
    "DEFAULT_COUNT",
    "Criterion",
    "DateBound",
    "Found",
    "Include",
    "Position",
    "SearchQuery",
    "Snapshot",
    "Token",
    "by_reference",
    "included",
    "page",
    "revincluded",
    "take_snapshot",
    "total",
]
