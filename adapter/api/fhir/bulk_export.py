"""FHIR Bulk Data `$export` (IG v2): kick-off, status, files, cancel.

    GET|POST /fhir/$export                     every type the caller may read
    GET|POST /fhir/Patient/$export             the Patient compartments (all, or `patient`)
    GET|POST /fhir/Group/{id}/$export          a Group's Patients (`all-patients`: every one)
    GET      /fhir/$export-poll-status/{job}   202 + X-Progress/Retry-After, then the manifest
    DELETE   /fhir/$export-poll-status/{job}   cancel: the job and its files are removed
    GET      /fhir/$export-file/{job}/{name}   one NDJSON file

A kick-off needs `Prefer: respond-async` and answers 202 with the status URL in
`Content-Location`; the job runs in a thread of the process that took it
(`adapter.export.runner`) and lives in the store, so any process answers its status. A job,
its status and its files belong to the caller that kicked it off (its tenant and key): for
anyone else they do not exist (404). Only the types the caller's scopes may read are
exported; asking for another by `_type` is 403. Each call is in the audit trail.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from adapter.api.auth.callers import Caller, authenticated_caller
from adapter.api.deps import Clock, ClockDep, SettingsDep, StoreReady
from adapter.api.fhir.common import (
    FhirRoute,
    fhir_response,
    instant,
    may_read,
    operation_outcome,
)
from adapter.api.middleware.audit import AUDIT_INTERACTION, AUDIT_TARGET, hand_over_count
from adapter.config import Settings
from adapter.errors import InsufficientScope, NotFound, RequestRefused, TooManyExports
from adapter.export.groups import ALL_PATIENTS, Groups
from adapter.export.request import GROUP, PATIENT, SYSTEM, ExportRequest, export_request
from adapter.export.runner import ExportPlan, run_export
from adapter.store import export_jobs
from adapter.store.engine import Engine
from adapter.store.export_jobs import COMPLETED, FAILED, ExportJob
from adapter.store.export_read import patient_keys_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, include_in_schema=False)
NDJSON = "application/fhir+ndjson"
RETRY_AFTER_SECONDS = 2


async def export_caller(request: Request) -> Caller:
    return authenticated_caller(request, "FHIR API")


ExportCaller = Annotated[Caller, Depends(export_caller)]


@router.api_route("/$export", methods=["GET", "POST"], name="export_system")
async def export_system(
    request: Request, caller: ExportCaller, settings: SettingsDep, clock: ClockDep, _: StoreReady
) -> Response:
    return await _kick_off(request, caller, settings, clock, SYSTEM, None)


@router.api_route("/Patient/$export", methods=["GET", "POST"], name="export_patients")
async def export_patients(
    request: Request, caller: ExportCaller, settings: SettingsDep, clock: ClockDep, _: StoreReady
) -> Response:
    return await _kick_off(request, caller, settings, clock, PATIENT, None)


@router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"], name="export_group")
async def export_group(
    group_id: str,
    request: Request,
    caller: ExportCaller,
    settings: SettingsDep,
    clock: ClockDep,
    _: StoreReady,
) -> Response:
    return await _kick_off(request, caller, settings, clock, GROUP, group_id)


@router.get("/$export-poll-status/{job_id}", name="export_status")
def export_status(
    job_id: str, request: Request, caller: ExportCaller, settings: SettingsDep, clock: ClockDep
) -> Response:
    _audited(request, "operation", f"$export-poll-status/{job_id}")
    engine = _engine(request)
    _housekeeping(engine, settings, clock)
    job = _owned_job(engine, job_id, caller)
    if job.state == FAILED:
        outcome = operation_outcome(500, job.error or "the export failed")
        return fhir_response(outcome, 500)
    if job.state != COMPLETED:
        headers = {"X-Progress": job.progress, "Retry-After": str(RETRY_AFTER_SECONDS)}
        return Response(status_code=202, headers=headers)
    files = export_jobs.files_of(engine, job.id)
    hand_over_count(request, sum(file.count for file in files))
    manifest: dict[str, Any] = {
        "transactionTime": instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [],
        "deleted": [],
        "error": [],
    }
    for file in files:
        url = str(request.url_for("export_file", job_id=job.public_id, name=file.name))
        entry = {"type": file.resource_type, "url": url, "count": file.count}
        manifest["deleted" if file.kind == "deleted" else "output"].append(entry)
    return Response(orjson.dumps(manifest), 200, media_type="application/json")


@router.delete("/$export-poll-status/{job_id}")
def cancel_export(
    job_id: str, request: Request, caller: ExportCaller, settings: SettingsDep
) -> Response:
    _audited(request, "delete", f"$export-poll-status/{job_id}")
    engine = _engine(request)
    job = _owned_job(engine, job_id, caller)
    export_jobs.remove_jobs(engine, [job.id])
    shutil.rmtree(_folder(settings, job.public_id), ignore_errors=True)
    log.info("export %s: cancelled by its client", job.public_id)
    return Response(status_code=202)


@router.get("/$export-file/{job_id}/{name}", name="export_file")
def export_file(
    job_id: str, name: str, request: Request, caller: ExportCaller, settings: SettingsDep
) -> Response:
    _audited(request, "operation", f"$export-file/{job_id}")
    engine = _engine(request)
    job = _owned_job(engine, job_id, caller)
    found = [file for file in export_jobs.files_of(engine, job.id) if file.name == name]
    path = _folder(settings, job.public_id) / name
    if job.state != COMPLETED or not found or not path.is_file():
        raise NotFound("no such export file (expired, cancelled, or never made)")
    hand_over_count(request, found[0].count)
    return FileResponse(path, media_type=NDJSON)


async def _kick_off(
    request: Request,
    caller: Caller,
    settings: Settings,
    clock: Clock,
    level: str,
    group_id: str | None,
) -> Response:
    where = {SYSTEM: "$export", PATIENT: "Patient/$export"}.get(level, f"Group/{group_id}/$export")
    _audited(request, "operation", where)
    if "respond-async" not in request.headers.get("prefer", ""):
        raise RequestRefused("Prefer: respond-async is required to start an export")
    pairs = await _parameters(request)
    asked = export_request(level, group_id, pairs)
    members = _group(request, caller, level, group_id)
    exported = _readable(caller, asked, explicit=any(name == "_type" for name, _ in pairs))
    engine = _engine(request)
    _check_patients(engine, caller, exported)
    _housekeeping(engine, settings, clock)
    now = clock()
    job = export_jobs.start_job(
        engine,
        caller.tenant,
        caller.key_id,
        str(request.url),
        exported.to_json(),
        now,
        settings.export_max_jobs_per_client,
    )
    if job is None:
        raise TooManyExports(
            f"this client already runs {settings.export_max_jobs_per_client} exports; "
            "wait for one to finish"
        )
    plan = ExportPlan(
        _folder(settings, job.public_id),
        settings.export_file_max_resources,
        request.app.state.clock,
        timedelta(hours=settings.export_retention_hours),
        members,
    )
    threading.Thread(
        target=run_export, args=(engine, job, plan), name=f"export-{job.id}", daemon=True
    ).start()
    log.info("export %s: kicked off (%s, %d types)", job.public_id, level, len(exported.types))
    status_url = str(request.url_for("export_status", job_id=job.public_id))
    return Response(status_code=202, headers={"Content-Location": status_url})


async def _parameters(request: Request) -> list[tuple[str, str]]:
    pairs = list(request.query_params.multi_items())
    if request.method != "POST":
        return pairs
    body = await request.body()
    if not body:
        return pairs
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestRefused("the body must be a FHIR Parameters resource (JSON)") from None
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise RequestRefused("the body must be a FHIR Parameters resource")
    return pairs + [_parameter(item) for item in document.get("parameter") or []]


def _parameter(item: object) -> tuple[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise RequestRefused("Parameters.parameter: each needs a name and a value")
    for key, value in item.items():
        if key == "valueReference" and isinstance(value, dict):
            return item["name"], str(value.get("reference", ""))
        if key.startswith("value") and isinstance(value, str):
            return item["name"], value
    raise RequestRefused("Parameters.parameter: each needs a string, instant or reference value")


def _group(
    request: Request, caller: Caller, level: str, group_id: str | None
) -> frozenset[str] | None:
    if level != GROUP or group_id == ALL_PATIENTS:
        return None
    groups = cast(Groups, request.app.state.export_groups)
    members = groups.get((caller.tenant, str(group_id)))
    if members is None:
        raise NotFound("no such Group (see /fhir/Group/all-patients/$export)")
    return members


def _readable(caller: Caller, asked: ExportRequest, *, explicit: bool) -> ExportRequest:
    """`asked` with only the types the caller may read; 403 when it names another by
    `_type` or `_typeFilter`, or may read none."""
    named = set(asked.type_filters) | (set(asked.types) if explicit else set())
    refused = sorted(kind for kind in named if not may_read(caller, kind))
    if refused:
        raise InsufficientScope(f"system/{refused[0]}.rs")
    readable = tuple(kind for kind in asked.types if may_read(caller, kind))
    if not readable or (asked.level != SYSTEM and not may_read(caller, "Patient")):
        raise InsufficientScope("system/*.rs")
    return replace(asked, types=readable)


def _check_patients(engine: Engine, caller: Caller, asked: ExportRequest) -> None:
    if not asked.patients:
        return
    with engine.connect() as conn:
        known = patient_keys_of(conn, caller.tenant, set(asked.patients))
    if len(known) < len(set(asked.patients)):
        raise RequestRefused("patient: names a Patient that is not found here")


def _owned_job(engine: Engine, job_id: str, caller: Caller) -> ExportJob:
    job = export_jobs.find_job(engine, job_id, caller.tenant, caller.key_id)
    if job is None:
        raise NotFound("no such export (another client's, expired, or cancelled)")
    return job


def _housekeeping(engine: Engine, settings: Settings, clock: Clock) -> None:
    """Delete what outlived its retention; fail what a dead process left running."""
    now = clock()
    expired = export_jobs.expired_jobs(engine, now)
    for _, public_id in expired:
        shutil.rmtree(_folder(settings, public_id), ignore_errors=True)
    export_jobs.remove_jobs(engine, [job_id for job_id, _ in expired])
    export_jobs.end_stale_jobs(engine, now, timedelta(hours=settings.export_retention_hours))


def _folder(settings: Settings, public_id: str) -> Path:
    return Path(settings.export_dir) / public_id


def _engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def _audited(request: Request, interaction: str, target: str) -> None:
    setattr(request.state, AUDIT_INTERACTION, interaction)
    setattr(request.state, AUDIT_TARGET, target)
