"""`create_app(settings)`: build the FastAPI application: state, middleware, routers, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapter import __version__
from adapter.api import encounters, fhir_read, fhir_search, health, records, submissions
from adapter.api.auth import KEYS_FILE_VARIABLE, ApiKeys
from adapter.api.body_limit import BodySizeLimit
from adapter.api.problems import UnhandledErrors, add_problem_handlers
from adapter.background import BackgroundWork
from adapter.config import Settings, get_settings
from adapter.ingest import utc_now
from adapter.store.engine import create_store_engine

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (read from the environment when not given).

    Raises `ConfigError` when the API keys file cannot be used, so a bad file stops the
    service at startup instead of locking every clinic out later.
    """
    settings = settings or get_settings()
    api_keys = ApiKeys.from_file(settings.api_keys_file)
    if not api_keys:
        log.warning("no API keys (%s): the clinic API refuses every call", KEYS_FILE_VARIABLE)
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
    app.state.api_keys = api_keys
    app.state.clock = utc_now
    # Added last, so outermost: the body limit's 413 is an answer, not an unhandled error.
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(UnhandledErrors)
    add_problem_handlers(app)
    for router in (health.router, encounters.router, records.router, submissions.router):
        app.include_router(router)
    # Order matters: the FHIR routes' paths overlap (see adapter.api.fhir_search).
    for router in (fhir_search.early, fhir_read.router, fhir_search.router, fhir_read.fallback):
        app.include_router(router)
    return app
