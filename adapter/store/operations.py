"""What an operator watches, read from the store: the outbox's state and age, parked
entries, open conflicts, the pull's progress. For `/metrics`, the alerts and `/console`.

Everything here is ids, types, counts, statuses and instants: never a resource's content.
`tenant=None` reads every tenant's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, RowMapping, Select, func, select

from adapter.store.schema import (
    CONFLICT,
    DEAD,
    IN_FLIGHT,
    OPEN,
    PENDING,
    outbox,
    pull_conflicts,
    submissions,
    sync_state,
)
from mappings.jsontypes import JsonObject

WAITING = (PENDING, IN_FLIGHT)
Query = TypeVar("Query", bound=Select[Any])
PULL_PREFIX = "pull/"
PULL_LEASE = "pull/lease"  # adapter.sync.pull.puller's lease row: no channel


@dataclass(frozen=True)
class OutboxFigures:
    by_state: dict[str, int]
    oldest_waiting: datetime | None
    """When the oldest entry still waiting to be sent was queued."""


@dataclass(frozen=True)
class ParkedEntry:
    """A dead letter or a conflict in the outbox, by ids only."""

    id: int
    tenant: str
    state: str
    submission: str
    """The submission's public id."""
    resource_keys: tuple[str, ...]
    attempts: int
    last_status: int | None
    error_class: str
    """The class of the error that parked it (`EhrRefused`), never its message."""
    issues: tuple[Issue, ...]
    updated_at: datetime


@dataclass(frozen=True)
class Issue:
    """One issue of the EHR's OperationOutcome: its coded parts only (diagnostics may echo
    a value of the record, so only a leading `HAPI-0000`-like message code is kept)."""

    severity: str
    code: str
    expression: str
    message_code: str


@dataclass(frozen=True)
class PullChannel:
    tenant: str
    channel: str
    """`Patient`, `history/Observation`, ..."""
    cursor: datetime | None
    updated_at: datetime
    is_finished: bool = True
    """False while a run is under way, or when one stopped part-way (the next resumes it)."""


def outbox_figures(conn: Connection, tenant: str | None = None) -> OutboxFigures:
    by_state = select(outbox.c.state, func.count()).group_by(outbox.c.state)
    oldest = select(func.min(outbox.c.created_at)).where(outbox.c.state.in_(WAITING))
    counted = {str(s): int(n) for s, n in conn.execute(_of(by_state, tenant)).all()}
    oldest_at: datetime | None = conn.execute(_of(oldest, tenant)).scalar()
    return OutboxFigures(counted, _utc(oldest_at) if oldest_at is not None else None)


def open_conflict_count(conn: Connection, tenant: str | None = None) -> int:
    query = select(func.count()).where(pull_conflicts.c.state == OPEN)
    if tenant is not None:
        query = query.where(pull_conflicts.c.tenant == tenant)
    return int(conn.execute(query).scalar() or 0)


def parked_entries(
    conn: Connection,
    tenant: str | None = None,
    *,
    states: Sequence[str] = (DEAD, CONFLICT),
    since: datetime | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 200,
) -> list[ParkedEntry]:
    """Parked entries, newest first (parked after `since`, or among `ids`, when given)."""
    query = (
        select(outbox, submissions.c.public_id)
        .join(submissions, submissions.c.id == outbox.c.submission_id)
        .where(outbox.c.state.in_(states))
        .order_by(outbox.c.updated_at.desc(), outbox.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(outbox.c.updated_at > since)
    if ids is not None:
        query = query.where(outbox.c.id.in_(ids))
    return [_parked(row._mapping) for row in conn.execute(_of(query, tenant))]


def conflicts_opened(conn: Connection, since: datetime) -> list[int]:
    """Ids of the conflicts the pull parked after `since` (still open), oldest first."""
    query = (
        select(pull_conflicts.c.id)
        .where(pull_conflicts.c.state == OPEN, pull_conflicts.c.detected_at > since)
        .order_by(pull_conflicts.c.id)
    )
    return [int(found) for found in conn.execute(query).scalars()]


def pull_channels(conn: Connection, tenant: str | None = None) -> list[PullChannel]:
    query = select(sync_state).where(
        sync_state.c.name.startswith(PULL_PREFIX), sync_state.c.name != PULL_LEASE
    )
    if tenant is not None:
        query = query.where(sync_state.c.tenant == tenant)
    channels = []
    for row in conn.execute(query.order_by(sync_state.c.tenant, sync_state.c.name)):
        value = _json(row.value)
        cursor = value.get("cursor")
        channels.append(
            PullChannel(
                tenant=row.tenant,
                channel=row.name.removeprefix(PULL_PREFIX),
                cursor=_utc(datetime.fromisoformat(cursor)) if isinstance(cursor, str) else None,
                updated_at=_utc(row.updated_at),
                is_finished=value.get("run") is None,
            )
        )
    return channels


def _of(query: Query, tenant: str | None) -> Query:
    return query if tenant is None else query.where(outbox.c.tenant == tenant)


def _parked(row: RowMapping) -> ParkedEntry:
    error = str(row["last_error"] or "")
    status = row["last_status"]
    return ParkedEntry(
        id=int(row["id"]),
        tenant=str(row["tenant"]),
        state=str(row["state"]),
        submission=str(row["public_id"]),
        resource_keys=tuple(row["resource_keys"]),
        attempts=int(row["attempts"]),
        last_status=int(status) if status is not None else None,
        error_class=error.partition(":")[0],
        issues=_issues(str(row["outcome"] or "null")),
        updated_at=_utc(row["updated_at"]),
    )


def _issues(outcome_text: str) -> tuple[Issue, ...]:
    kept = _json(outcome_text)
    outcome = kept.get("operation_outcome")
    if not isinstance(outcome, dict):
        return ()
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return ()
    return tuple(_issue(item) for item in issues if isinstance(item, dict))


def _issue(item: JsonObject) -> Issue:
    expression = item.get("expression") or item.get("location") or []
    diagnostics = str(item.get("diagnostics") or "")
    head = diagnostics.partition(":")[0]
    return Issue(
        severity=str(item.get("severity", "")),
        code=str(item.get("code", "")),
        expression=", ".join(str(e) for e in expression) if isinstance(expression, list) else "",
        message_code=head if head.startswith("HAPI-") and len(head) <= 12 else "",
    )


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC (SQLite gives back instants without their zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _json(text: str) -> JsonObject:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}
