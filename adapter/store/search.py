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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from adapter.store.schema import resources, search_index
from adapter.store.search_index import CANONICAL
from adapter.store.search_query import (
    DEFAULT_COUNT,
    Criterion,
    DateBound,
    Include,
    Position,
    SearchQuery,
    Snapshot,
    Token,
)
from adapter.store.search_sql import (
    FOUND_COLUMNS,
    page_statement,
    shape_of,
    total_statement,
    values,
)

_HIGHEST_PK = select(func.max(resources.c.pk))
# No bound on what includes add (the API always passes its `max_included`).
UNBOUNDED = 10**9
# Built once: `$everything` runs it for every type at every hop (see `by_reference`).
_BY_IDS = select(*FOUND_COLUMNS).where(
    resources.c.tenant == bindparam("tenant"),
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.logical_id.in_(bindparam("ids", expanding=True)),
    resources.c.deleted.is_(False),
)


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
    forward = position is None or position.forward
    ascending = (not query.descending) == forward
    statement = page_statement(shape_of(query), ascending, position is not None)
    bound = values(tenant, query, snapshot) | {"limit": query.count + 1}
    if position is not None:
        key = sort_value(position.sort_key) if query.sort else position.pk
        bound |= {"after_key": key, "after_pk": position.pk}
    rows = [_found(row) for row in conn.execute(statement, bound)]
    return rows if forward else rows[::-1]


def total(conn: Connection, tenant: str, query: SearchQuery, snapshot: Snapshot) -> int:
    statement = total_statement(shape_of(query))
    return int(conn.execute(statement, values(tenant, query, snapshot)).scalar_one())


def included(
    conn: Connection,
    tenant: str,
    matches: Sequence[Found],
    includes: Iterable[Include],
    most: int = UNBOUNDED,
) -> list[Found]:
    """The resources `matches` refer to through each `_include` (not already in `matches`):
    at most `most + 1` of them (one more tells that there were more)."""
    wanted: set[str] = set()
    canonicals: set[str] = set()
    for include in includes:
        pks = [found.pk for found in matches if found.resource_type == include.source]
        if not pks:
            continue
        values = conn.execute(
            select(search_index.c.value).where(
                search_index.c.resource_pk.in_(pks), search_index.c.param == include.param
            )
        ).scalars()
        for value in values:
            if _is_canonical(value):
                canonicals.add(value)
            elif include.target is None or value.startswith(include.target):
                wanted.add(value)
    wanted -= {found.reference for found in matches}
    found = by_reference(conn, tenant, sorted(wanted)[: most + 1])
    if canonicals:
        seen = {f.pk for f in found} | {m.pk for m in matches}
        found += [f for f in by_canonical(conn, tenant, sorted(canonicals)) if f.pk not in seen]
        found.sort(key=lambda item: item.pk)
    return found[: most + 1]


def _is_canonical(value: str) -> bool:
    """A canonical URL (`https://.../Questionnaire/x`), not a `Type/id` reference."""
    return "://" in value or value.startswith("urn:")


def by_canonical(conn: Connection, tenant: str, urls: Sequence[str]) -> list[Found]:
    """The current, undeleted resources of `tenant` whose canonical `url` is one of `urls`."""
    if not urls:
        return []
    named = select(search_index.c.resource_pk).where(
        search_index.c.tenant == tenant,
        search_index.c.param == CANONICAL,
        search_index.c.value.in_(urls),
    )
    statement = select(*FOUND_COLUMNS).where(
        resources.c.pk.in_(named), resources.c.deleted.is_(False)
    )
    return [_found(row) for row in conn.execute(statement)]


def revincluded(
    conn: Connection,
    tenant: str,
    matches: Sequence[Found],
    revincludes: Iterable[Include],
    most: int = UNBOUNDED,
) -> list[int]:
    """The keys of the resources that refer to `matches` through each `_revinclude`, in
    order: at most `most + 1` of them (one more tells that there were more). Keys only, read
    from the index, so a page of patients cited by every observation of the store costs
    `most` keys, never their content (`compartment.rows` reads that)."""
    seen = {found.pk for found in matches}
    out: list[int] = []
    for include in revincludes:
        room = most + 1 - len(out)
        refs = [
            found.reference
            for found in matches
            if include.target is None or found.resource_type == include.target
        ]
        if room <= 0 or not refs:
            continue
        # Rows already seen are skipped: `room` new ones are among any `room + seen` rows.
        # The index alone answers (a deleted resource has no index rows, see `unindex`),
        # and the limit bounds what it reads.
        citing = (
            select(search_index.c.resource_pk)
            .where(
                search_index.c.tenant == tenant,
                search_index.c.resource_type == include.source,
                search_index.c.param == include.param,
                search_index.c.value.in_(refs),
            )
            .distinct()
            .limit(room + len(seen))
        )
        for pk in sorted(conn.execute(citing).scalars()):
            if pk not in seen:
                seen.add(pk)
                out.append(pk)
    return out[: most + 1]


def by_reference(conn: Connection, tenant: str, references: Iterable[str]) -> list[Found]:
    """The current, undeleted resources named `Type/id` of `tenant`, by primary key."""
    by_type: dict[str, list[str]] = {}
    for reference in references:
        resource_type, _, logical_id = reference.partition("/")
        by_type.setdefault(resource_type, []).append(logical_id)
    found: list[Found] = []
    for resource_type, ids in by_type.items():
        named = {"tenant": tenant, "resource_type": resource_type, "ids": ids}
        found.extend(_found(row) for row in conn.execute(_BY_IDS, named))
    return sorted(found, key=lambda item: item.pk)


def sort_value(key: Any) -> datetime:
    """A sort key from a paging token (ISO text) or the store (naive on SQLite), in UTC."""
    moment = datetime.fromisoformat(key) if isinstance(key, str) else key
    if not isinstance(moment, datetime):
        raise ValueError("not a sort key")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


__all__ = [
    "DEFAULT_COUNT",
    "FOUND_COLUMNS",
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
