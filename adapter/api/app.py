"""`create_app(settings)`: build the FastAPI application: state, middleware, routers, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from adapter import __version__
from adapter.api import health
from adapter.api.body_limit import BodySizeLimit
from adapter.background import BackgroundWork
from adapter.config import Settings, get_settings
from adapter.errors import AdapterError
from adapter.store.engine import create_store_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (read from the environment when not given)."""
    settings = settings or get_settings()
    engine = create_store_engine(settings.database_url)

    background = BackgroundWork(settings, engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background.start()
        yield
        background.stop()
        engine.dispose()

    app = FastAPI(title="Ketamine clinic FHIR adapter", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.background = background
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    app.add_exception_handler(AdapterError, _problem_response)
    app.include_router(health.router)
    return app


async def _problem_response(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdapterError)  # registered for AdapterError only
    return JSONResponse(
        exc.problem_detail(),
        status_code=exc.status_code,
        media_type="application/problem+json",
    )
