"""`add_console(app, ...)`: the console's routes, static files, state and error pages."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from adapter.config import Settings
from adapter.console import actions, pages
from adapter.console.access import add_console_handlers
from adapter.console.reconcile_run import Reconciles
from adapter.console.render import STATIC_DIR, templates
from adapter.console.session import signing_key
from adapter.store.engine import Engine


def add_console(app: FastAPI, settings: Settings, engine: Engine) -> None:
    app.state.console_key = signing_key(settings.paging_secret)
    app.state.console_reconciles = Reconciles(settings, engine)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(actions.router)
    app.include_router(pages.router)
    add_console_handlers(app, templates)
