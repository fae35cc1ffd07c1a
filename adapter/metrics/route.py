"""`GET /metrics`: the Prometheus text format, for a caller holding `admin/metrics.read`.

With several web processes (`PROMETHEUS_MULTIPROC_DIR` set by `adapter serve`), each answer
adds up every process's figures; the store's figures are read once per answer.
`ADAPTER_METRICS_PORT` serves the same on a port of its own without a credential instead
(for a network only the monitoring system reaches); `/metrics` then answers 404 here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from adapter.api.admin.scopes import METRICS_READ, holds
from adapter.api.auth.callers import Caller, authenticated_caller
from adapter.config import Settings
from adapter.errors import InsufficientScope, NotFound
from adapter.metrics.series import is_multiprocess, series
from adapter.metrics.store_figures import StoreFigures

router = APIRouter(tags=["admin"])


async def metrics_reader(request: Request) -> Caller:
    if request.app.state.settings.metrics_port:
        raise NotFound("/metrics is served on ADAPTER_METRICS_PORT")
    caller = authenticated_caller(request, "metrics")
    if not holds(caller.scopes, METRICS_READ):
        raise InsufficientScope(METRICS_READ)
    return caller


@router.get(
    "/metrics",
    summary="The adapter's figures in Prometheus' text format",
    response_class=Response,
    include_in_schema=False,
)
def read_metrics(request: Request, _: Annotated[Caller, Depends(metrics_reader)]) -> Response:
    body = exposition(request.app.state.store_figures)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def exposition(store: StoreFigures) -> bytes:
    """Every series in the text format: this process's (or all web processes') and the
    store's."""
    return generate_latest(registry(store))


def registry(store: StoreFigures) -> CollectorRegistry:
    """What a scrape reads: the counted series (every web process's, in multiprocess mode)
    and the store's figures."""
    series()  # made now, so an idle service still shows each series
    combined = CollectorRegistry()
    if is_multiprocess():
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    else:
        combined.register(_ThisProcess())
    combined.register(store)
    return combined


def serve_on_port(settings: Settings, store: StoreFigures) -> None:
    """Serve /metrics without a credential on `ADAPTER_METRICS_PORT` (a daemon thread)."""
    start_http_server(settings.metrics_port, settings.metrics_host, registry(store))


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
