"""Bulk Data `$export` jobs in the store: their life cycle and their files.

    accepted -> running -> completed            (files listed in export_files)
                       \\-> failed (error says why)
    any state -> gone (cancelled, or expired: the row and its files are deleted)

A job belongs to a tenant and to the caller that kicked it off (`owner`, the caller's key
id); every read here takes both, so another client's job is not found. While a process
writes a job's files it moves `heartbeat_at` (`beat`); a running job whose heartbeat is
older than `STALE_AFTER` was left by a process that died, and `end_stale_jobs` ends it as
failed with that reason: a manifest is only ever made of a job that wrote everything.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, delete, func, insert, select, update

from adapter.store.engine import write_transaction
from adapter.store.schema import export_files, export_jobs

ACCEPTED = "accepted"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
ACTIVE = (ACCEPTED, RUNNING)
STALE_AFTER = timedelta(seconds=120)
STOPPED_REASON = "the process writing this export stopped before it finished; kick off again"

_jobs = export_jobs
_files = export_files


@dataclass(frozen=True)
class ExportJob:
    id: int
    public_id: str
    tenant: str
    owner: str
    state: str
    request_url: str
    parameters: str
    transaction_time: datetime
    progress: str
    error: str | None


@dataclass(frozen=True)
class ExportFile:
    number: int
    kind: str
    resource_type: str
    name: str
    count: int


def start_job(
    engine: Engine,
    tenant: str,
    owner: str,
    request_url: str,
    parameters: str,
    now: datetime,
    max_active: int,
) -> ExportJob | None:
    """A new accepted job as of `now`; None when the owner already has `max_active` jobs."""
    with write_transaction(engine) as conn:
        active = conn.execute(
            select(func.count()).where(
                _jobs.c.tenant == tenant, _jobs.c.owner == owner, _jobs.c.state.in_(ACTIVE)
            )
        ).scalar_one()
        if active >= max_active:
            return None
        values = {
            "public_id": secrets.token_hex(16),
            "tenant": tenant,
            "owner": owner,
            "state": ACCEPTED,
            "request_url": request_url,
            "parameters": parameters,
            "transaction_time": now,
            "progress": "accepted",
            "created_at": now,
            "heartbeat_at": now,
        }
        job_id = conn.execute(insert(_jobs).values(values).returning(_jobs.c.id)).scalar_one()
        return _job(conn.execute(select(*_JOB_COLUMNS).where(_jobs.c.id == job_id)).one())


def find_job(engine: Engine, public_id: str, tenant: str, owner: str) -> ExportJob | None:
    """The job `public_id` of this tenant and owner; None for anyone else's, or none."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*_JOB_COLUMNS).where(
                _jobs.c.public_id == public_id, _jobs.c.tenant == tenant, _jobs.c.owner == owner
            )
        ).first()
    return None if row is None else _job(row)


def beat(engine: Engine, job_id: int, progress: str, now: datetime) -> bool:
    """Record that the job is running and how far it got; False when it was cancelled."""
    with write_transaction(engine) as conn:
        changed = conn.execute(
            update(_jobs)
            .where(_jobs.c.id == job_id, _jobs.c.state.in_(ACTIVE))
            .values(state=RUNNING, progress=progress[:128], heartbeat_at=now)
        ).rowcount
    return bool(changed)


def add_file(engine: Engine, job_id: int, file: ExportFile) -> None:
    with write_transaction(engine) as conn:
        conn.execute(insert(_files).values(job_id=job_id, **file.__dict__))


def finish(engine: Engine, job_id: int, now: datetime, retention: timedelta) -> bool:
    """Mark the job completed, its files kept until `now + retention`; False if cancelled."""
    values = {"state": COMPLETED, "progress": "completed", "expires_at": now + retention}
    with write_transaction(engine) as conn:
        changed = conn.execute(
            update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state.in_(ACTIVE)).values(**values)
        ).rowcount
    return bool(changed)


def fail(engine: Engine, job_id: int, reason: str, now: datetime, retention: timedelta) -> None:
    values = {"state": FAILED, "error": reason, "expires_at": now + retention}
    with write_transaction(engine) as conn:
        conn.execute(
            update(_jobs).where(_jobs.c.id == job_id, _jobs.c.state.in_(ACTIVE)).values(**values)
        )


def files_of(engine: Engine, job_id: int) -> list[ExportFile]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                _files.c.number,
                _files.c.kind,
                _files.c.resource_type,
                _files.c.name,
                _files.c.count,
            )
            .where(_files.c.job_id == job_id)
            .order_by(_files.c.number)
        ).all()
    return [ExportFile(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]


def remove_jobs(engine: Engine, job_ids: Sequence[int]) -> None:
    """Forget the jobs and their files' rows (the caller deletes the files themselves)."""
    if not job_ids:
        return
    with write_transaction(engine) as conn:
        conn.execute(delete(_files).where(_files.c.job_id.in_(job_ids)))
        conn.execute(delete(_jobs).where(_jobs.c.id.in_(job_ids)))


def expired_jobs(engine: Engine, now: datetime) -> list[tuple[int, str]]:
    """(id, public id) of every job whose files have outlived their retention."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_jobs.c.id, _jobs.c.public_id).where(_jobs.c.expires_at < now)
        ).all()
    return [(int(row.id), str(row.public_id)) for row in rows]


def end_stale_jobs(engine: Engine, now: datetime, retention: timedelta) -> int:
    """Fail every active job whose heartbeat stopped (its process died); how many."""
    values = {"state": FAILED, "error": STOPPED_REASON, "expires_at": now + retention}
    with write_transaction(engine) as conn:
        return int(
            conn.execute(
                update(_jobs)
                .where(_jobs.c.state.in_(ACTIVE), _jobs.c.heartbeat_at < now - STALE_AFTER)
                .values(**values)
            ).rowcount
        )


_JOB_COLUMNS = (
    _jobs.c.id,
    _jobs.c.public_id,
    _jobs.c.tenant,
    _jobs.c.owner,
    _jobs.c.state,
    _jobs.c.request_url,
    _jobs.c.parameters,
    _jobs.c.transaction_time,
    _jobs.c.progress,
    _jobs.c.error,
)


def _job(row: Row[Any, *tuple[Any, ...]]) -> ExportJob:
    values = row._mapping
    return ExportJob(**{column.name: values[column.name] for column in _JOB_COLUMNS})
