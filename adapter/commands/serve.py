"""`adapter serve`: run the HTTP service under uvicorn, host and port from settings or flags."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from typing import TYPE_CHECKING

from adapter.config import Settings, get_settings
from adapter.errors import PortInUse
from adapter.logs import configure_logging
from adapter.metrics.series import multiprocess_metrics

if TYPE_CHECKING:
    from adapter.commands import Subparsers

log = logging.getLogger(__name__)
PAGING_SECRET_VARIABLE = "ADAPTER_PAGING_SECRET"


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the adapter's HTTP service (settings from ADAPTER_* variables).",
    )
    parser.add_argument("--host", help="interface to listen on (default: ADAPTER_HOST)")
    parser.add_argument(
        "--port", type=port_number, help="TCP port to listen on (default: ADAPTER_PORT)"
    )
    parser.set_defaults(handler=run)
    return parser


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = get_settings().model_copy(update=overrides)
    configure_logging(settings.log_level, settings.log_format)
    if settings.web_workers == 1:
        return _serve_one(settings)
    # Before the metrics are first made here, and inherited by every web process.
    with multiprocess_metrics():
        return _serve_several(settings)


def _serve_one(settings: Settings) -> int:
    # No access log: request lines carry query strings, which may carry patient identifiers.
    import uvicorn  # deferred: `adapter --help` should not pay for the server stack

    from adapter.api.app import create_app, served
    from adapter.commands.http_protocol import CoalescingHttpTools
    from adapter.metrics.route import serve_on_port

    app = create_app(settings)
    _log_serving(settings)
    if settings.metrics_port:
        serve_on_port(settings, app.state.store_figures)
    uvicorn.run(
        served(app),
        http=CoalescingHttpTools,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def _serve_several(settings: Settings) -> int:
    # Several processes: this one migrates and pushes; each web process only serves. What
    # would stop each of them at startup stops this one first, with one line (exit 2).
    from adapter.api.auth.jwt_tokens import verifier_from
    from adapter.api.auth.keys_file import load_api_keys

    load_api_keys(settings.api_keys_file)
    verifier_from(settings)
    _log_serving(settings)
    # They must sign paging links with one key, or a `next` link would fail on another one.
    if not settings.paging_secret:
        os.environ[PAGING_SECRET_VARIABLE] = secrets.token_hex(32)
    from adapter.background import BackgroundWork
    from adapter.commands.web_processes import Listen, WebProcesses
    from adapter.ingest import utc_now
    from adapter.metrics.route import serve_on_port
    from adapter.metrics.store_figures import StoreFigures
    from adapter.store.engine import create_store_engine

    engine = create_store_engine(settings.database_url)
    background = BackgroundWork(settings, engine)
    if settings.metrics_port:
        serve_on_port(settings, StoreFigures(engine, utc_now))
    processes = WebProcesses(
        Listen(settings.host, settings.port, settings.log_level.lower()),
        settings.web_workers,
        hang_seconds=settings.web_timeout_seconds,
    )
    background.start()
    try:
        return processes.run()
    except PortInUse as exc:
        log.error("%s", exc)
        return 1
    finally:
        background.stop()
        engine.dispose()


def _log_serving(settings: Settings) -> None:
    log.info(
        "serving on %s:%d (%d web process(es))", settings.host, settings.port, settings.web_workers
    )
