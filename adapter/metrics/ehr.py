"""`MeasuredEhr`: an EHR client that counts and times every call the push and the pull make.

It stands between the workers and `FhirClient` (what `adapter.runtime` hands them), so the
client itself stays the one seam to the network and knows nothing of metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from adapter.ehr.bundles import BundleResult
from adapter.ehr.capability import Capabilities
from adapter.ehr.client import FetchedResource, FhirClient, Page
from adapter.ehr.http import Params
from adapter.ehr.pace import Pace
from adapter.errors import EhrError
from adapter.metrics.series import series, status_class
from mappings.jsontypes import JsonObject


class MeasuredEhr:
    """What `PushWorker` and `Puller` need of an EHR, measured (see the module doc)."""

    def __init__(self, client: FhirClient) -> None:
        self.client = client
        self.base_url = client.base_url

    def capabilities(self) -> Capabilities:
        return self.client.capabilities()

    @property
    def pace(self) -> Pace:
        """The EHR's asked-for pause (Retry-After), kept by the client for every caller."""
        return self.client.pace

    def send(self, bundle: JsonObject) -> BundleResult:
        started = time.perf_counter()
        try:
            result = self.client.send(bundle)
        except EhrError as exc:
            series().push_outcomes.labels(status_class(exc.http_status)).inc()
            raise
        finally:
            series().ehr_seconds.labels("push").observe(time.perf_counter() - started)
        for entry in result.entries:
            series().push_outcomes.labels(status_class(entry.status)).inc()
        return result

    def read(self, resource_type: str, resource_id: str) -> FetchedResource:
        started = time.perf_counter()
        try:
            return self.client.read(resource_type, resource_id)
        finally:
            series().ehr_seconds.labels("read").observe(time.perf_counter() - started)

    def search_pages(self, resource_type: str, params: Params, *, max_pages: int) -> Iterator[Page]:
        pages = self.client.search_pages(resource_type, params, max_pages=max_pages)
        return _measured(pages, "search")

    def history_pages(
        self, resource_type: str, params: Params, *, max_pages: int
    ) -> Iterator[Page]:
        pages = self.client.history_pages(resource_type, params, max_pages=max_pages)
        return _measured(pages, "history")


def _measured(pages: Iterator[Page], operation: str) -> Iterator[Page]:
    """The pages, each fetch timed and its outcome counted."""
    while True:
        started = time.perf_counter()
        try:
            page = next(pages)
        except StopIteration:
            return
        except EhrError as exc:
            _observe(operation, started, status_class(exc.http_status))
            raise
        _observe(operation, started, "2xx")
        yield page


def _observe(operation: str, started: float, outcome: str) -> None:
    series().ehr_seconds.labels(operation).observe(time.perf_counter() - started)
    series().pull_outcomes.labels(outcome).inc()
