"""The console's pages (GET): overview, dead letters, conflicts, submissions, reconcile,
audit. Each reads through the store's and the sync's functions, for the operator's tenant."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from adapter.api.admin_audit import audit_event, date_moment, outcome_class
from adapter.api.deps import EngineDep, SettingsDep, StoreReady
from adapter.api.status import submission_status
from adapter.console.access import SignedIn
from adapter.console.reconcile_run import Reconciles
from adapter.console.render import page
from adapter.errors import RequestRefused
from adapter.readiness import check_ehr
from adapter.store import audit, operations
from adapter.store.audit import AuditSearch
from adapter.sync.compare import KINDS
from adapter.sync.conflicts import list_conflicts

router = APIRouter(prefix="/console", include_in_schema=False)
AUDIT_ROWS = 100


@router.get("")
async def overview(
    request: Request, operator: SignedIn, engine: EngineDep, settings: SettingsDep, _: StoreReady
) -> HTMLResponse:
    with engine.connect() as conn:
        figures = operations.outbox_figures(conn, operator.tenant)
        conflicts = operations.open_conflict_count(conn, operator.tenant)
        refusals = operations.parked_entries(conn, operator.tenant, limit=5)
        channels = operations.pull_channels(conn, operator.tenant)
        last_push = operations.last_delivery(conn, operator.tenant)
    ehr = await run_in_threadpool(check_ehr, settings)
    fragment = request.headers.get("HX-Request") == "true"
    return page(
        request,
        "overview_figures.html" if fragment else "overview.html",
        operator,
        figures=figures,
        conflicts=conflicts,
        refusals=refusals,
        channels=channels,
        last_push=last_push,
        ehr=ehr,
    )


@router.get("/dead-letters")
def dead_letters(
    request: Request, operator: SignedIn, engine: EngineDep, _: StoreReady
) -> HTMLResponse:
    with engine.connect() as conn:
        parked = operations.parked_entries(conn, operator.tenant)
    return page(request, "dead_letters.html", operator, parked=parked)


@router.get("/conflicts")
def conflicts(
    request: Request, operator: SignedIn, engine: EngineDep, _: StoreReady
) -> HTMLResponse:
    with engine.connect() as conn:
        found = list_conflicts(conn, operator.tenant)
    return page(request, "conflicts.html", operator, conflicts=found)


@router.get("/submissions")
def submissions(
    request: Request,
    operator: SignedIn,
    engine: EngineDep,
    _: StoreReady,
    submission: Annotated[str, Query(max_length=64)] = "",
    encounter: Annotated[str, Query(max_length=64)] = "",
    received: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    searched = bool(submission or encounter or received)
    found = []
    if searched:
        with engine.connect() as conn:
            ids = operations.find_submissions(
                conn,
                operator.tenant,
                public_id=submission.strip(),
                encounter_id=encounter.strip(),
                received_on=received,
            )
            found = [submission_status(conn, operator.tenant, public_id) for public_id in ids]
    query = {"submission": submission, "encounter": encounter, "received": received or ""}
    return page(request, "submissions.html", operator, found=found, searched=searched, query=query)


def reconciles(request: Request) -> Reconciles:
    found: Reconciles = request.app.state.console_reconciles
    return found


@router.get("/reconcile")
def reconcile(
    request: Request,
    operator: SignedIn,
    runs: Annotated[Reconciles, Depends(reconciles)],
    patient: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    run = runs.latest(operator.tenant)
    shown = [
        d
        for d in (run.differences if run else [])
        if (not patient or d.patient == patient) and (not kind or d.kind == kind)
    ]
    patients = sorted({d.patient or "(shared)" for d in run.differences}) if run else []
    fragment = request.headers.get("HX-Request") == "true"
    return page(
        request,
        "reconcile_progress.html" if fragment else "reconcile.html",
        operator,
        run=run,
        shown=shown,
        patients=patients,
        kinds=KINDS,
        query={"patient": patient, "kind": kind},
    )


@router.get("/audit")
def audit_trail(
    request: Request,
    operator: SignedIn,
    engine: EngineDep,
    settings: SettingsDep,
    _: StoreReady,
    date: Annotated[list[str] | None, Query()] = None,
    agent: Annotated[str, Query(max_length=128)] = "",
    outcome: Annotated[str, Query(max_length=1)] = "",
) -> HTMLResponse:
    try:
        dates = [date_moment(value) for value in date or [] if value]
        asked = AuditSearch(
            operator.tenant,
            AUDIT_ROWS,
            dates,
            agent or None,
            outcome_class(outcome) if outcome else None,
        )
    except RequestRefused as exc:
        return page(request, "audit.html", operator, 400, events=[], error=str(exc), query={})
    with engine.connect() as conn:
        rows = audit.search(conn, asked)
    events = [audit_event(row, settings.namespace) for row in rows]
    shown = {"date": (date or [""])[0], "agent": agent, "outcome": outcome}
    return page(request, "audit.html", operator, events=events, error=None, query=shown)
