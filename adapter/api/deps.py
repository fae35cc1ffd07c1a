"""What a route can ask for, as `Annotated` types: settings, engine, clock, caller, ready store.

The values live on `app.state`, put there by `create_app`, so a test app gets its own (and
a test can swap `app.state.clock` to move time). They are `async` although they never
wait: FastAPI runs a plain function dependency in its thread pool, a thread hop per
dependency per request, which was most of the cost of a read by id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Request

from adapter.api.auth.callers import (
    ENCOUNTERS_WRITE,
    PATIENTS_READ,
    SUBMISSIONS_READ,
    Caller,
    require_scope,
)
from adapter.background import BackgroundWork
from adapter.config import Settings
from adapter.errors import StoreUnavailable
from adapter.store.engine import Engine

Clock = Callable[[], datetime]


async def app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def app_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


async def app_clock(request: Request) -> Clock:
    return cast(Clock, request.app.state.clock)


async def migrated_store(request: Request) -> None:
    """Refuse with 503 (retry) until the background thread has migrated the store."""
    background = cast(BackgroundWork, request.app.state.background)
    if not background.migrated.is_set():
        raise StoreUnavailable("the store is being prepared; retry shortly")


SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[Engine, Depends(app_engine)]
ClockDep = Annotated[Clock, Depends(app_clock)]
StoreReady = Annotated[None, Depends(migrated_store)]
EncounterWriter = Annotated[Caller, Depends(require_scope(ENCOUNTERS_WRITE))]
SubmissionReader = Annotated[Caller, Depends(require_scope(SUBMISSIONS_READ))]
PatientReader = Annotated[Caller, Depends(require_scope(PATIENTS_READ))]
