"""The console's pages (GET): overview, dead letters, conflicts, submissions, FHIR
subscriptions, reconcile, audit. Each reads through the store's and the sync's functions,
for the tenant the operator may see (`adapter.console.viewing`: their own, or every
tenant's for a key of every tenant, with a tenant filter)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from adapter.api.admin.audit_events import audit_event, date_moment, outcome_class
from adapter.api.clinic.status import submission_status
from adapter.api.deps import EngineDep, SettingsDep
from adapter.console.reconcile_run import Reconciles
from adapter.console.render import page
from adapter.console.subscription_rows import subscription_row
from adapter.console.viewing import Viewing
from adapter.console.would_send import compared, planned
from adapter.errors import ConsoleRefused, RequestRefused
from adapter.readiness import check_ehr
from adapter.runtime import ehr_client
from adapter.store import audit, console_views, operations
from adapter.store import subscriptions as subscription_store
from adapter.store.audit import AuditSearch
from adapter.sync.pull.conflicts import list_conflicts
from adapter.sync.reconcile.compare import KINDS

router = APIRouter(prefix="/console", include_in_schema=False)
AUDIT_ROWS = 100


@router.get("")
async def overview(
    request: Request, view: Viewing, engine: EngineDep, settings: SettingsDep
) -> HTMLResponse:
    tenant = view.tenant
    with engine.connect() as conn:
        figures = operations.outbox_figures(conn, tenant)
        conflicts = operations.open_conflict_count(conn, tenant)
        refusals = operations.parked_entries(conn, tenant, limit=5)
        channels = operations.pull_channels(conn, tenant)
        last_push = console_views.last_push(conn, tenant)
        subscriptions_in_error = subscription_store.count_in_error(conn, tenant)
    ehr = await run_in_threadpool(check_ehr, settings)
    fragment = request.headers.get("HX-Request") == "true"
    return page(
        request,
        "overview_figures.html" if fragment else "overview.html",
        view.operator,
        view=view,
        figures=figures,
        conflicts=conflicts,
        refusals=refusals,
        channels=channels,
        last_push=last_push,
        subscriptions_in_error=subscriptions_in_error,
        ehr=ehr,
    )


@router.get("/dead-letters")
def dead_letters(request: Request, view: Viewing, engine: EngineDep) -> HTMLResponse:
    with engine.connect() as conn:
        parked = operations.parked_entries(conn, view.tenant)
    return page(request, "dead_letters.html", view.operator, view=view, parked=parked)


@router.get("/dead-letters/{entry_id}")
def dead_letter(
    request: Request, entry_id: int, view: Viewing, engine: EngineDep, settings: SettingsDep
) -> HTMLResponse:
    """One parked entry and what it would send now, against what the EHR holds."""
    with engine.connect() as conn:
        found = operations.parked_entries(conn, view.tenant, ids=[entry_id], limit=1)
        if not found:
            raise ConsoleRefused(f"no dead letter or conflict {entry_id} here")
        plan = planned(conn, found[0].tenant, found[0].resource_keys)
    if settings.is_ehr_configured:
        with ehr_client(settings) as client:
            resources = compared(plan, client)
    else:
        resources = compared(plan, None)
    context: dict[str, Any] = {"view": view, "entry": found[0], "resources": resources}
    return page(request, "dead_letter.html", view.operator, **context)


@router.get("/conflicts")
def conflicts(request: Request, view: Viewing, engine: EngineDep) -> HTMLResponse:
    with engine.connect() as conn:
        found = list_conflicts(conn, view.tenant)
    return page(request, "conflicts.html", view.operator, view=view, conflicts=found)


@router.get("/submissions")
def submissions(
    request: Request,
    view: Viewing,
    engine: EngineDep,
    submission: Annotated[str, Query(max_length=64)] = "",
    encounter: Annotated[str, Query(max_length=64)] = "",
    received: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    searched = bool(submission or encounter or received)
    found = []
    if searched:
        with engine.connect() as conn:
            ids = console_views.find_submissions(
                conn,
                view.tenant,
                public_id=submission.strip(),
                encounter_id=encounter.strip(),
                received_on=received,
            )
            found = [
                {"tenant": tenant, **(submission_status(conn, tenant, public_id) or {})}
                for tenant, public_id in ids
            ]
    query = {"submission": submission, "encounter": encounter, "received": received or ""}
    context: dict[str, Any] = {"view": view, "found": found, "searched": searched, "query": query}
    return page(request, "submissions.html", view.operator, **context)


@router.get("/subscriptions")
def subscriptions(request: Request, view: Viewing, engine: EngineDep) -> HTMLResponse:
    """The FHIR Subscriptions, those in `error` first: what each sends where (the endpoint's
    origin only), how its deliveries go; *Restart delivery* for one in `error` or `off`."""
    with engine.connect() as conn:
        rows = [subscription_row(sub) for sub in subscription_store.of_tenants(conn, view.tenant)]
    restarted = request.query_params.get("restarted", "")
    context: dict[str, Any] = {
        "view": view,
        "subscriptions": rows,
        "restarted": next((row for row in rows if row.public_id == restarted), None),
    }
    return page(request, "subscriptions.html", view.operator, **context)


def reconciles(request: Request) -> Reconciles:
    found: Reconciles = request.app.state.console_reconciles
    return found


@router.get("/reconcile")
def reconcile(
    request: Request,
    view: Viewing,
    runs: Annotated[Reconciles, Depends(reconciles)],
    patient: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    shown_runs = runs.latest_of(view.tenant)
    differences = [d for run in shown_runs for d in run.differences]
    shown = [
        d
        for d in differences
        if (not patient or (d.patient or "(shared)") == patient) and (not kind or d.kind == kind)
    ]
    patients = sorted({d.patient or "(shared)" for d in differences})
    fragment = request.headers.get("HX-Request") == "true"
    return page(
        request,
        "reconcile_progress.html" if fragment else "reconcile.html",
        view.operator,
        view=view,
        runs=shown_runs,
        running=any(not run.finished for run in shown_runs),
        browsable=any(run.finished and not run.failure for run in shown_runs),
        shown=shown,
        patients=patients,
        kinds=KINDS,
        query={"patient": patient, "kind": kind},
    )


@router.get("/audit")
def audit_trail(
    request: Request,
    view: Viewing,
    engine: EngineDep,
    settings: SettingsDep,
    date: Annotated[list[str] | None, Query()] = None,
    agent: Annotated[str, Query(max_length=128)] = "",
    outcome: Annotated[str, Query(max_length=1)] = "",
) -> HTMLResponse:
    shown = {"date": (date or [""])[0], "agent": agent, "outcome": outcome}
    try:
        dates = [date_moment(value) for value in date or [] if value]
        asked = AuditSearch(
            view.tenant,
            AUDIT_ROWS,
            dates,
            agent or None,
            outcome_class(outcome) if outcome else None,
        )
    except RequestRefused as exc:
        refused: dict[str, Any] = {"view": view, "events": [], "error": str(exc), "query": shown}
        return page(request, "audit.html", view.operator, 400, **refused)
    with engine.connect() as conn:
        entries = audit.search(conn, asked)
    events = [(entry.tenant, audit_event(entry, settings.namespace)) for entry in entries]
    context: dict[str, Any] = {"view": view, "events": events, "error": None, "query": shown}
    return page(request, "audit.html", view.operator, **context)
