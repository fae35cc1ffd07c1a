"""`create_app(settings)`: build the FastAPI application: state, middleware, routers, errors."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapter import __version__
from adapter.api import routes
from adapter.api.auth.access_tokens import AccessTokens, signing_key
from adapter.api.auth.callers import KEYS_FILE_VARIABLE
from adapter.api.auth.jwt_tokens import verifier_from
from adapter.api.auth.keys_file import load_api_keys
from adapter.api.auth.smart_clients import load_smart_clients
from adapter.api.middleware.audit import AuditTrail, AuditWriter
from adapter.api.middleware.body_limit import BodySizeLimit
from adapter.api.middleware.problems import UnhandledErrors, add_problem_handlers
from adapter.api.openapi.document import publish_openapi
from adapter.api.openapi.operations import OPERATIONS
from adapter.background import BackgroundWork
from adapter.config import Settings, get_settings
from adapter.console.mount import add_console
from adapter.export.groups import load_groups
from adapter.ingest import utc_now
from adapter.logs import configure_logging
from adapter.metrics.requests import RequestMetrics
from adapter.metrics.store_figures import StoreFigures
from adapter.store.engine import DEFAULT_CONNECT_TIMEOUT_SECONDS, create_store_engine
from adapter.store.key_reads import key_reads_for

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Clinic software sends its records here in the clinic contract's JSON (`/clinic`); the "
    "adapter maps them to FHIR R4, stores them and pushes them to the EHR, and serves them "
    "read-only as FHIR (`/fhir`). Every operation but `/health`, `/ready` and "
    "`/fhir/metadata` needs `Authorization: Bearer <API key or JWT>`. Clinic errors are RFC "
    "9457 problem details (`application/problem+json`, with `errors[]` naming each bad "
    "field); FHIR errors are OperationOutcomes. Guides: docs/clinic-api.md, docs/fhir-api.md."
)
TAGS = [
    {"name": "health", "description": "Liveness and readiness, for load balancers"},
    {"name": "clinic", "description": "What clinic software sends and reads back"},
    {"name": "admin", "description": "The audit trail, as FHIR AuditEvents"},
    {"name": "fhir", "description": "The store as a read-only FHIR R4 server"},
]


def create_app(settings: Settings | None = None, *, lead: bool = True) -> FastAPI:
    """The application for `settings` (read from the environment when not given).

    `lead=False` is for one of several web processes: the parent process migrates and
    pushes (see `adapter.background`). Raises `ConfigError` when the API keys file cannot
    be used, so a bad file stops the service at startup instead of locking every clinic
    out later.
    """
    settings = settings or get_settings()
    api_keys = load_api_keys(settings.api_keys_file)
    if not api_keys:
        log.warning("no API keys (%s): the clinic API refuses every call", KEYS_FILE_VARIABLE)
    engine = create_store_engine(settings.database_url)
    key_reads = key_reads_for(
        settings.database_url, settings.statement_timeout_ms, DEFAULT_CONNECT_TIMEOUT_SECONDS
    )
    background = BackgroundWork(settings, engine, lead=lead)
    audit_writer = AuditWriter(engine, background.migrated, settings.audit_queue_size)
    jwt_verifier = verifier_from(settings)
    smart_clients = load_smart_clients(settings.smart_clients_file)
    access_tokens = (
        AccessTokens(signing_key(settings.token_signing_key_file)) if smart_clients else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background.start()
        audit_writer.start()
        if key_reads is not None:
            await key_reads.open()
        if jwt_verifier is not None:
            threading.Thread(target=jwt_verifier.jwks.preload, daemon=True).start()
        yield
        if key_reads is not None:
            await key_reads.close()
        audit_writer.stop()
        background.stop()
        engine.dispose()

    app = FastAPI(
        title="Ketamine clinic FHIR adapter",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.key_reads = key_reads
    app.state.background = background
    app.state.api_keys = api_keys
    app.state.jwt_verifier = jwt_verifier
    app.state.smart_clients = smart_clients
    app.state.export_groups = load_groups(settings.export_groups_file)
    app.state.access_tokens = access_tokens
    app.state.audit_writer = audit_writer
    app.state.clock = utc_now
    app.state.store_figures = StoreFigures(engine, lambda: app.state.clock())
    # Each added middleware wraps the ones before: the audit trail sees every final status,
    # the 500 of `UnhandledErrors` and the 413 of the body limit included.
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(UnhandledErrors)
    app.add_middleware(AuditTrail, writer=audit_writer, clock=lambda: app.state.clock())
    app.add_middleware(RequestMetrics, audit_depth=lambda: audit_writer.depth)
    add_problem_handlers(app)
    publish_openapi(app, OPERATIONS)
    for router in routes.SERVICE:
        app.include_router(router)
    add_console(app, settings, engine)
    for router in routes.FHIR:
        app.include_router(router)
    return app


def web_process_app() -> FastAPI:
    """The app of one of several web processes (uvicorn's factory; settings from the
    environment, which the processes inherit)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return served(create_app(settings, lead=False))


def served(app: FastAPI) -> FastAPI:
    """`app`, about to serve for the life of its process (`adapter serve`).

    What exists now (the modules, the app, its routes and models) lives as long as the
    process, so it is put out of the garbage collector's sight: a full collection then took
    3-10 ms instead of 140-230 ms, with every request of the process waiting meanwhile
    (docs/benchmarks.md). Not for tests, which build many apps in one process: what is
    frozen is never collected.
    """
    gc.collect()
    gc.freeze()
    return app
