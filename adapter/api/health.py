"""`GET /health` (liveness: the process answers), `GET /ready` (readiness: its dependencies do)."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from adapter.api.deps import EngineDep, SettingsDep
from adapter.background import BackgroundWork
from adapter.readiness import check_all

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request, settings: SettingsDep, engine: EngineDep) -> JSONResponse:
    # A sync route: FastAPI runs it in a worker thread, so blocking probes are fine here.
    background = cast(BackgroundWork, request.app.state.background)
    checks = check_all(settings, engine, background.migrated.is_set())
    is_ready = not any(check.is_down for check in checks)
    body = {
        "status": "ready" if is_ready else "not_ready",
        "checks": [check.as_json() for check in checks],
    }
    return JSONResponse(body, status_code=200 if is_ready else 503)
