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
    literal,
    not_,
    or_,
    select,
    true,
)

from adapter.store.schema import resources, search_index
from adapter.store.search_index import IDENTIFIER_SUFFIX, PARAMETERS, normalised
from adapter.store.search_query import Chain, Criterion, DateBound, SearchQuery, Snapshot, Token

FOUND_COLUMNS = (
    resources.c.pk,
    resources.c.resource_type,
    resources.c.logical_id,
    resources.c.version,
    resources.c.content,
    resources.c.last_updated,
)
# Criteria on the resource row itself; every other one goes through the index (`_has`).
RESOURCE_SIDE = ("_id", "_lastUpdated", "_has")
# Modifiers whose criterion cannot start a query (it holds for resources without rows).
_NEGATIVE = ("missing", "not")
# Distinct shapes kept built; real clients ask a handful.
CACHED_SHAPES = 512
# What a `date` sort puts resources without a date at: first.
_NO_DATE = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CriterionShape:
    """A criterion as its SQL sees it: parameter, the kind of each value (`_value_shape`),
    modifier and chain."""

    param: str
    kinds: tuple[Hashable, ...]
    modifier: str = ""
    chain: Chain | None = None


@dataclass(frozen=True)
class Shape:
    """What a search's SQL depends on: its criteria's shapes, and the sort."""

    criteria: tuple[CriterionShape, ...]
    sort: str | None


def shape_of(query: SearchQuery) -> Shape:
    criteria = tuple(
        CriterionShape(
            c.param,
            () if c.param == "_id" else tuple(_value_shape(c, v) for v in _chosen(c)),
            c.modifier,
            c.chain,
        )
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
            elif _matched_kind(criterion) == "string":
                bound[name] = _string_pattern(value, criterion.modifier)
            elif criterion.modifier != "missing":
                bound[name] = f"%/{value[2:]}" if value.startswith("*/") else value
    return bound


def _matched_kind(criterion: Criterion) -> str:
    """The kind of the values: the chained parameter's for a chain."""
    return criterion.kind if criterion.chain is None else criterion.chain.kind


def _string_pattern(text: str, modifier: str) -> str:
    """`:exact` compares as written; else the normalised start (`:contains`: anywhere)."""
    if modifier == "exact":
        return text
    escaped = normalised(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ("%" if modifier == "contains" else "") + escaped + "%"


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


def _value_shape(criterion: Criterion, value: Token | DateBound | str) -> Hashable:
    if isinstance(value, Token):
        return ("token", value.system is None, value.system == "", value.code == "")
    if isinstance(value, DateBound):
        return ("date", value.prefix)
    if criterion.modifier == "missing":
        return ("missing", value == "true")
    if _matched_kind(criterion) == "string":
        return ("string", criterion.modifier == "exact")
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
    drivers = [c for c in shape.criteria if _can_drive(c)]
    if drivers:
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
    driver = min(drivers, key=_drive_rank, default=None)
    conditions.extend(
        _criterion(i, criterion, drives=criterion is driver)
        for i, criterion in enumerate(shape.criteria)
    )
    return conditions


def _can_drive(criterion: CriterionShape) -> bool:
    return criterion.param not in RESOURCE_SIDE and criterion.modifier not in _NEGATIVE


def _drive_rank(criterion: CriterionShape) -> int:
    """Which index criterion the query starts from: a reference (or a chain) names one
    patient's or one encounter's few rows, a token (a code, a status) may name rows of
    every patient, a date range or a string more. The others are then checked per
    candidate, by its own index rows."""
    if criterion.chain is not None:
        return 0
    kind = PARAMETERS.get(criterion.param, ("",))[0]
    return {"reference": 0, "token": 1}.get(kind, 2)


def _criterion(i: int, criterion: CriterionShape, *, drives: bool) -> ColumnElement[bool]:
    param, kinds, chain = criterion.param, criterion.kinds, criterion.chain
    if param == "_id":
        return resources.c.logical_id.in_(bindparam(f"c{i}_ids", expanding=True))
    named = [(kind, f"c{i}_{j}") for j, kind in enumerate(kinds)]
    if param == "_lastUpdated":
        column = resources.c.last_updated
        return or_(*(_instant(column, kind, name) for kind, name in named))
    if criterion.modifier == "missing":
        present = _has(param, true())
        return or_(*(not_(present) if kind[1] else present for kind, _ in named))  # type: ignore[index]
    if chain is not None and chain.via is not None:
        return _cited_by(chain, named)
    condition: ColumnElement[bool]
    if chain is not None:
        condition = search_index.c.value.in_(_chain_targets(chain, named))
    else:
        condition = or_(*(_value_matches(kind, name) for kind, name in named))
    if criterion.modifier == "not":
        return not_(_has_own(param, condition))
    if criterion.modifier == "identifier":
        param += IDENTIFIER_SUFFIX
    return _has(param, condition) if drives else _has_own(param, condition)


def _chain_matches(chain: Chain, named: list[tuple[Hashable, str]]) -> Select[Any]:
    """The keys of the `chain.target` resources (of the tenant) whose `chain.param` matches."""
    inner = search_index.alias("chained")
    return select(inner.c.resource_pk).where(
        inner.c.tenant == bindparam("tenant"),
        inner.c.resource_type == chain.target,
        inner.c.param == chain.param,
        or_(*(_value_matches(kind, name, inner.c) for kind, name in named)),
    )


def _chain_targets(chain: Chain, named: list[tuple[Hashable, str]]) -> Select[Any]:
    """`Type/id` of the tenant's current `chain.target` resources matching the chain."""
    target = resources.alias("target")
    return select(literal(f"{chain.target}/") + target.c.logical_id).where(
        target.c.tenant == bindparam("tenant"),
        target.c.resource_type == chain.target,
        target.c.deleted.is_(False),
        target.c.pk.in_(_chain_matches(chain, named)),
    )


def _cited_by(chain: Chain, named: list[tuple[Hashable, str]]) -> ColumnElement[bool]:
    """`_has`: the resource is named by `chain.via` of a matching `chain.target` resource."""
    citing = search_index.alias("citing")
    cited = select(citing.c.value).where(
        citing.c.tenant == bindparam("tenant"),
        citing.c.resource_type == chain.target,
        citing.c.param == chain.via,
        citing.c.resource_pk.in_(_chain_matches(chain, named)),
    )
    own = resources.c.resource_type + literal("/") + resources.c.logical_id
    return own.in_(cited)


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


def _value_matches(kind: Hashable, name: str, column: Any = search_index.c) -> ColumnElement[bool]:
    """Whether an index row (of `column`, the index or an alias of it) matches the value
    bound as `name`, of kind `kind` (see `_value_shape`)."""
    matched: ColumnElement[bool]
    match kind:
        case ("token", no_system, empty_system, any_code):
            system: ColumnElement[bool] = column.system == bindparam(f"{name}_system")
            if any_code:  # `system|`: any code of the system
                return system
            code: ColumnElement[bool] = column.value == bindparam(f"{name}_code")
            if no_system:
                return code
            if empty_system:
                return and_(code, column.system.is_(None))
            return and_(code, system)
        case ("date", prefix):
            return _range(column.date_lo, column.date_hi, str(prefix), name)
        case ("string", True):
            matched = column.system == bindparam(name)
        case ("string", False):
            matched = column.value.like(bindparam(name), escape="\\")
        case ("like",):
            matched = column.value.like(bindparam(name))
        case _:
            matched = column.value == bindparam(name)
    return matched


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
    if prefix == "sa":
        return lo >= bound_hi
    if prefix == "eb":
        return hi <= bound_lo
    if prefix == "ne":
        return not_(and_(lo >= bound_lo, hi <= bound_hi))
    if prefix == "ap":  # the parameter's range already widened (adapter.api.fhir.params)
        return and_(lo < bound_hi, hi > bound_lo)
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
    if prefix == "sa":
        return column >= bound_hi
    if prefix == "eb":
        return column < bound_lo
    if prefix == "ne":
        return or_(column < bound_lo, column >= bound_hi)
    if prefix == "ap":
        return and_(column >= bound_lo, column < bound_hi)
    return true()
