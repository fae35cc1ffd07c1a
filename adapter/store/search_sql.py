"""The SQL of a search's page and total, built once per query shape, its values bound.

Building a search's SQLAlchemy expression (some 15 column comparisons and their cache key)
cost more CPU than the database took to run it. A statement here depends only on the
query's `Shape` (which parameters, how many values of which kind, the sort), never on a
value: every value is a bound parameter, named by its place in the query (`c<criterion>_
<value>...`), and `values` gives them for one query. So the statements of a shape are
built once (an LRU cache) and each search only binds its values.

Tenant isolation: every statement binds `tenant`, on the resource row and in each index
subquery alike.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
)

from adapter.store.schema import resources, search_index
from adapter.store.search_index import PARAMETERS
from adapter.store.search_query import DateBound, SearchQuery, Snapshot, Token

FOUND_COLUMNS = (
    resources.c.pk,
    resources.c.resource_type,
    resources.c.logical_id,
    resources.c.version,
    resources.c.content,
    resources.c.last_updated,
)
# Criteria on the resource row itself; every other one goes through the index (`_has`).
RESOURCE_SIDE = ("_id", "_lastUpdated")
# Distinct shapes kept built; real clients ask a handful.
CACHED_SHAPES = 512
# What a `date` sort puts resources without a date at: first.
_NO_DATE = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    """What a search's SQL depends on: each criterion's parameter and the kind of each of
    its values (see `_value_shape`), and the sort."""

    criteria: tuple[tuple[str, tuple[Hashable, ...]], ...]
    sort: str | None


def shape_of(query: SearchQuery) -> Shape:
    criteria = tuple(
        (c.param, () if c.param == "_id" else tuple(_value_shape(v) for v in _chosen(c)))
        for c in query.criteria
    )
    return Shape(criteria, query.sort)


def values(tenant: str, query: SearchQuery, snapshot: Snapshot) -> dict[str, Any]:
    """The bound values of `query`'s statements (the names `_criterion` gives them)."""
    bound: dict[str, Any] = {
        "tenant": tenant,
        "resource_type": query.resource_type,
        "snapshot_pk": snapshot.pk,
        "snapshot_at": snapshot.at,
    }
    for i, criterion in enumerate(query.criteria):
        if criterion.param == "_id":
            bound[f"c{i}_ids"] = [str(v) for v in criterion.values]
            continue
        for j, value in enumerate(_chosen(criterion)):
            name = f"c{i}_{j}"
            if isinstance(value, Token):
                bound[f"{name}_code"] = value.code
                bound[f"{name}_system"] = value.system
            elif isinstance(value, DateBound):
                bound[f"{name}_lo"], bound[f"{name}_hi"] = value.lo, value.hi
            else:
                bound[name] = f"%/{value[2:]}" if value.startswith("*/") else value
    return bound


@lru_cache(maxsize=CACHED_SHAPES)
def page_statement(shape: Shape, ascending: bool, after_a_row: bool) -> Select[Any]:
    """The page's rows in order, from the row (`after_key`, `after_pk`) on when
    `after_a_row`, at most `limit` of them."""
    sort = _sort_column(shape.sort)
    statement = select(*FOUND_COLUMNS, sort.label("sort_key")).where(*_matching(shape))
    if after_a_row:
        statement = statement.where(_beyond(sort, ascending))
    order = (sort, resources.c.pk) if ascending else (sort.desc(), resources.c.pk.desc())
    return statement.order_by(*order).limit(bindparam("limit"))


@lru_cache(maxsize=CACHED_SHAPES)
def total_statement(shape: Shape) -> Select[Any]:
    return select(func.count()).select_from(resources).where(*_matching(shape))


def _chosen(criterion: Any) -> tuple[Any, ...]:
    """The values of a criterion that take part in the SQL (`_lastUpdated`: its ranges)."""
    if criterion.param == "_lastUpdated":
        return tuple(v for v in criterion.values if isinstance(v, DateBound))
    return tuple(criterion.values)


def _value_shape(value: Token | DateBound | str) -> Hashable:
    if isinstance(value, Token):
        return ("token", value.system is None, value.system == "")
    if isinstance(value, DateBound):
        return ("date", value.prefix)
    return ("like",) if value.startswith("*/") else ("equal",)


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


def _beyond(sort: ColumnElement[Any], ascending: bool) -> ColumnElement[bool]:
    key: BindParameter[Any] = bindparam("after_key")
    pk: BindParameter[int] = bindparam("after_pk")
    if ascending:
        return or_(sort > key, and_(sort == key, resources.c.pk > pk))
    return or_(sort < key, and_(sort == key, resources.c.pk < pk))


def _matching(shape: Shape) -> list[ColumnElement[bool]]:
    tenant_column: ColumnElement[str] = resources.c.tenant
    type_column: ColumnElement[str] = resources.c.resource_type
    if any(param not in RESOURCE_SIDE for param, _ in shape.criteria):
        # The index subqueries (see `_has`) name the tenant and type themselves and hold
        # few rows; checked as plain columns here, they would let SQLite (no statistics)
        # walk every resource of the type by the (tenant, type) index instead, 10x slower
        # at 300 encounters and growing with the store. `coalesce` of these NOT NULL
        # columns is the column itself, still checked, but no index can drive from it.
        tenant_column = func.coalesce(tenant_column, "")
        type_column = func.coalesce(type_column, "")
    conditions: list[ColumnElement[bool]] = [
        tenant_column == bindparam("tenant"),
        type_column == bindparam("resource_type"),
        resources.c.deleted.is_(False),
        resources.c.pk <= bindparam("snapshot_pk"),
    ]
    if shape.sort is not None:
        conditions.append(resources.c.last_updated <= bindparam("snapshot_at"))
    indexed = [p for p, _ in shape.criteria if p not in RESOURCE_SIDE]
    driver = min(indexed, key=_drive_rank, default=None)
    conditions.extend(
        _criterion(i, param, kinds, drives=param == driver)
        for i, (param, kinds) in enumerate(shape.criteria)
    )
    return conditions


def _drive_rank(param: str) -> int:
    """Which index criterion the query starts from: a reference names one patient's or one
    encounter's few rows, a token (a code, a status) may name rows of every patient, a date
    range more. The others are then checked per candidate, by its own index rows."""
    kind = PARAMETERS.get(param, ("",))[0]
    return {"reference": 0, "token": 1}.get(kind, 2)


def _criterion(
    i: int, param: str, kinds: tuple[Hashable, ...], *, drives: bool = True
) -> ColumnElement[bool]:
    if param == "_id":
        return resources.c.logical_id.in_(bindparam(f"c{i}_ids", expanding=True))
    named = [(kind, f"c{i}_{j}") for j, kind in enumerate(kinds)]
    if param == "_lastUpdated":
        column = resources.c.last_updated
        return or_(*(_instant(column, kind, name) for kind, name in named))
    alternatives = [_value_matches(kind, name) for kind, name in named]
    if drives:
        return _has(param, or_(*alternatives))
    return _has_own(param, or_(*alternatives))


def _has(param: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The resource has an index row of (tenant, type, `param`) meeting `condition`.

    An `IN` over the index, not a correlated `EXISTS`: the database then starts from the
    index's (tenant, type, param, value) rows instead of testing every resource of the type.
    """
    rows = select(search_index.c.resource_pk).where(
        search_index.c.tenant == bindparam("tenant"),
        search_index.c.resource_type == bindparam("resource_type"),
        search_index.c.param == param,
        condition,
    )
    return resources.c.pk.in_(rows)


def _has_own(param: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """The same test for a criterion that does not drive the query: among the candidate's
    own index rows (by `resource_pk`), not as a list of every matching row of the tenant
    (a code shared by every patient's record made that list the search's main cost)."""
    own = (
        select(search_index.c.id)
        .where(
            search_index.c.resource_pk == resources.c.pk,
            search_index.c.tenant == bindparam("tenant"),
            search_index.c.param == param,
            condition,
        )
        .exists()
    )
    return own


def _value_matches(kind: Hashable, name: str) -> ColumnElement[bool]:
    column = search_index.c
    match kind:
        case ("token", no_system, empty_system):
            code = column.value == bindparam(f"{name}_code")
            if no_system:
                return code
            if empty_system:
                return and_(code, column.system.is_(None))
            return and_(code, column.system == bindparam(f"{name}_system"))
        case ("date", prefix):
            return _range(column.date_lo, column.date_hi, str(prefix), name)
        case ("like",):
            return column.value.like(bindparam(name))
        case _:
            return column.value == bindparam(name)


def _bounds(name: str) -> tuple[BindParameter[Any], BindParameter[Any]]:
    return bindparam(f"{name}_lo"), bindparam(f"{name}_hi")


def _range(
    lo: ColumnElement[datetime], hi: ColumnElement[datetime], prefix: str, name: str
) -> ColumnElement[bool]:
    """A stored range [lo, hi) against a parameter's range, per FHIR's prefix rules."""
    bound_lo, bound_hi = _bounds(name)
    if prefix == "eq":
        return and_(lo >= bound_lo, hi <= bound_hi)
    if prefix == "ge":
        return hi > bound_lo
    if prefix == "le":
        return lo < bound_hi
    if prefix == "gt":
        return hi > bound_hi
    if prefix == "lt":
        return lo < bound_lo
    return false()


def _instant(column: ColumnElement[datetime], kind: Hashable, name: str) -> ColumnElement[bool]:
    """A stored instant against a parameter's range."""
    prefix = kind[1] if isinstance(kind, tuple) else ""
    bound_lo, bound_hi = _bounds(name)
    if prefix == "eq":
        return and_(column >= bound_lo, column < bound_hi)
    if prefix == "ge":
        return column >= bound_lo
    if prefix == "le":
        return column < bound_hi
    if prefix == "gt":
        return column >= bound_hi
    if prefix == "lt":
        return column < bound_lo
    return true()
