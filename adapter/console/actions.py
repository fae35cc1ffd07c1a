"""The console's actions (POST): sign in and out, replay dead letters, settle a conflict,
restart a FHIR Subscription's delivery, start a reconcile. Each checks the form's CSRF
token and the scope it needs, acts only on what the operator's tenant reach covers (their
own tenant's rows; any tenant's for a key of every tenant), calls what the command line
(or the FHIR API) calls, and is audited under the operator's name in the trail of the
tenant acted on."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapter.api.admin.scopes import (
    CONFLICTS_WRITE,
    CONSOLE_READ,
    OUTBOX_WRITE,
    RECONCILE_WRITE,
    SUBSCRIPTIONS_WRITE,
)
from adapter.api.deps import EngineDep, SettingsDep, StoreReady
from adapter.console.access import SignedIn, acting
from adapter.console.audit_trail import record_action
from adapter.console.pages import reconciles
from adapter.console.reconcile_run import Reconciles
from adapter.console.render import page
from adapter.console.session import (
    CSRF_FIELD,
    current_operator,
    end_session,
    operator_for,
    start_session,
)
from adapter.console.subscription_rows import RESTARTABLE
from adapter.errors import ConsoleRefused, NotFound, SignInRefused
from adapter.store import console_views
from adapter.store import outbox as box
from adapter.store import subscriptions as subscription_store
from adapter.store.engine import write_transaction
from adapter.sync.pull.conflicts import resolve

router = APIRouter(prefix="/console", include_in_schema=False)
SIGN_IN_CSRF = "adapter_console_sign_in"


@router.get("/sign-in")
def sign_in_form(request: Request) -> Response:
    if current_operator(request) is not None:
        return RedirectResponse("/console", status_code=303)
    return _sign_in_page(request, None, 200)


@router.post("/sign-in")
async def sign_in(request: Request, settings: SettingsDep) -> Response:
    form = await request.form()
    token = str(form.get(CSRF_FIELD, ""))
    if not token or not hmac.compare_digest(token, request.cookies.get(SIGN_IN_CSRF, "")):
        raise ConsoleRefused("the form's CSRF token is missing or wrong: reload the page")
    app = request.app
    try:
        caller = operator_for(
            str(form.get("credential", "")), app.state.api_keys, app.state.jwt_verifier
        )
    except SignInRefused:
        message = "not signed in: the credential is unknown or holds no admin/console.read scope"
        return _sign_in_page(request, message, 401)
    response = RedirectResponse("/console", status_code=303)
    start_session(response, request, caller, settings.console_session_minutes)
    response.delete_cookie(SIGN_IN_CSRF, path="/console/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, operator: SignedIn) -> Response:
    await acting(request, operator, CONSOLE_READ)
    await record_action(request, operator, "console-sign-out", "console", 0, "ok")
    response = RedirectResponse("/console/sign-in", status_code=303)
    end_session(response)
    return response


@router.post("/dead-letters/replay")
async def replay(
    request: Request, operator: SignedIn, engine: EngineDep, _: StoreReady
) -> Response:
    form = await acting(request, operator, OUTBOX_WRITE)
    wanted = [int(v) for v in form.getlist("id") if isinstance(v, str) and v.isdigit()]
    if not wanted:
        raise ConsoleRefused("choose at least one entry to replay")
    # Each entry is checked against the operator's reach, and audited in its tenant's trail.
    with write_transaction(engine) as conn:
        found = console_views.parked_by_tenant(conn, operator.reach(), wanted)
        counts = {t: box.replay(conn, ids, request.app.state.clock()) for t, ids in found.items()}
    for tenant, ids in found.items():
        target = "outbox:" + ",".join(str(i) for i in ids)
        await record_action(
            request, operator, "console-replay", target, counts[tenant], "ok", tenant
        )
    if not found:
        await record_action(request, operator, "console-replay", "outbox:-", 0, "ok")
    replayed = sum(counts.values())
    return RedirectResponse(f"/console/dead-letters?replayed={replayed}", status_code=303)


@router.post("/conflicts/{conflict_id}/resolve")
async def resolve_conflict(
    request: Request,
    conflict_id: int,
    operator: SignedIn,
    engine: EngineDep,
    settings: SettingsDep,
    _: StoreReady,
) -> Response:
    form = await acting(request, operator, CONFLICTS_WRITE)
    keep = str(form.get("keep", ""))
    if keep not in ("ehr", "clinic"):
        raise ConsoleRefused("keep: must be ehr or clinic")
    side: Literal["ehr", "clinic"] = "ehr" if keep == "ehr" else "clinic"
    try:
        with write_transaction(engine) as conn:
            if console_views.open_conflict_tenant(conn, conflict_id, operator.reach()) is None:
                raise NotFound(f"no open conflict {conflict_id}")
            resolve(
                conn,
                conflict_id,
                side,
                ehr_base=settings.ehr_base_url,
                actor=operator.name,
                now=request.app.state.clock(),
            )
    except NotFound as exc:
        raise ConsoleRefused(str(exc)) from None
    return RedirectResponse(f"/console/conflicts?resolved={conflict_id}", status_code=303)


@router.post("/subscriptions/{public_id}/restart")
async def restart_subscription(
    request: Request,
    public_id: Annotated[str, Path(max_length=64)],
    operator: SignedIn,
    engine: EngineDep,
    _: StoreReady,
) -> Response:
    """Set a subscription in `error` (or `off`) back to `requested`, as a client's update
    does: a handshake goes out, then its undelivered notifications."""
    form = await acting(request, operator, SUBSCRIPTIONS_WRITE)
    tenant = operator.reach(str(form.get("tenant", "")).strip())
    if tenant is None:
        raise ConsoleRefused("tenant: name the subscription's tenant")
    with write_transaction(engine) as conn:
        current = subscription_store.read(conn, tenant, public_id)
        if current is None:
            raise ConsoleRefused(f"no subscription {public_id} here")
        if current.status not in RESTARTABLE:
            raise ConsoleRefused(
                f"subscription {public_id} is {current.status}: only one in error or off restarts"
            )
        subscription_store.restart(conn, current, request.app.state.clock())
        waiting = subscription_store.undelivered(conn, current.pk)
    target = f"Subscription/{public_id}"
    await record_action(
        request, operator, "console-subscription-restart", target, waiting, "ok", tenant
    )
    shown = f"&tenant={quote(tenant, safe='')}" if operator.of_every_tenant else ""
    return RedirectResponse(
        f"/console/subscriptions?restarted={quote(public_id, safe='')}{shown}", status_code=303
    )


@router.post("/reconcile")
async def start_reconcile(
    request: Request,
    operator: SignedIn,
    runs: Annotated[Reconciles, Depends(reconciles)],
    settings: SettingsDep,
    engine: EngineDep,
    _: StoreReady,
) -> Response:
    form = await acting(request, operator, RECONCILE_WRITE)
    if not settings.is_ehr_configured:
        raise ConsoleRefused("no EHR is configured (ADAPTER_EHR_BASE_URL)")
    tenant = operator.reach(str(form.get("tenant", "")).strip())
    if tenant is None:
        raise ConsoleRefused("tenant: choose the tenant to reconcile")
    with engine.connect() as conn:
        if operator.of_every_tenant and tenant not in console_views.known_tenants(conn):
            raise ConsoleRefused(f"tenant: the store holds nothing of tenant {tenant}")
    started = runs.start(tenant, operator.name)
    outcome = "started" if started else "already-running"
    await record_action(request, operator, "console-reconcile", "reconcile", 0, outcome, tenant)
    shown = f"?tenant={quote(tenant, safe='')}" if operator.of_every_tenant else ""
    return RedirectResponse(f"/console/reconcile{shown}", status_code=303)


def _sign_in_page(request: Request, message: str | None, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html", None, status, message=message, csrf=token)
    response.set_cookie(
        SIGN_IN_CSRF,
        token,
        max_age=3600,
        path="/console/sign-in",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
