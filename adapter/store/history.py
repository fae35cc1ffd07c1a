"""Type-level history: every version of a tenant's resources of one type, newest first.

Versions never change once written, so a page is stable as long as it is bounded by the
snapshot of its first page (versions recorded since are left out) and keyed by
(recorded_at, resource key, version), which no two versions share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, tuple_

from adapter.store.schema import resource_versions, resources
from adapter.store.search import Snapshot


@dataclass(frozen=True)
class HistoryRow:
    resource_pk: int
    logical_id: str
    version: int
    content: str
    deleted: bool
    recorded_at: datetime


@dataclass(frozen=True)
class HistoryPosition:
    """A page starts after (`forward`, i.e. older) or before the version keyed so."""

    recorded_at: datetime
    resource_pk: int
    version: int
    forward: bool = True


def history_page(
    conn: Connection,
    tenant: str,
    resource_type: str,
    bounds: tuple[Snapshot, datetime | None],
    count: int,
    position: HistoryPosition | None,
) -> list[HistoryRow]:
    """Up to `count + 1` versions from `position` on, newest first."""
    statement = _versions(tenant, resource_type, bounds).add_columns(
        resources.c.logical_id,
        resource_versions.c.version,
        resource_versions.c.content,
        resource_versions.c.deleted,
        resource_versions.c.recorded_at,
    )
    key = (
        resource_versions.c.recorded_at,
        resource_versions.c.resource_pk,
        resource_versions.c.version,
    )
    forward = position is None or position.forward
    if position is not None:
        mark = (position.recorded_at, position.resource_pk, position.version)
        statement = statement.where(_past(key, mark, older=forward))
    order = [column.desc() for column in key] if forward else list(key)
    rows = [HistoryRow(*row) for row in conn.execute(statement.order_by(*order).limit(count + 1))]
    return rows if forward else rows[::-1]


def history_total(
    conn: Connection, tenant: str, resource_type: str, bounds: tuple[Snapshot, datetime | None]
) -> int:
    statement = _versions(tenant, resource_type, bounds).with_only_columns(func.count())
    return int(conn.execute(statement).scalar_one())


def _versions(tenant: str, resource_type: str, bounds: tuple[Snapshot, datetime | None]) -> Any:
    snapshot, since = bounds
    statement = (
        select(resource_versions.c.resource_pk)
        .join(resources, resources.c.pk == resource_versions.c.resource_pk)
        .where(
            resources.c.tenant == tenant,
            resources.c.resource_type == resource_type,
            resources.c.pk <= snapshot.pk,
            resource_versions.c.recorded_at <= snapshot.at,
        )
    )
    if since is not None:
        statement = statement.where(resource_versions.c.recorded_at >= since)
    return statement


def _past(
    key: tuple[Any, Any, Any], mark: tuple[datetime, int, int], *, older: bool
) -> ColumnElement[bool]:
    """Rows strictly past `mark` in newest-first order (`older`) or before it."""
    at, pk, version = key
    if older:
        return or_(at < mark[0], and_(at == mark[0], tuple_(pk, version) < tuple_(*mark[1:])))
    return or_(at > mark[0], and_(at == mark[0], tuple_(pk, version) > tuple_(*mark[1:])))
