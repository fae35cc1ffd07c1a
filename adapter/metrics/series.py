"""The series counted as things happen, made on first use.

They are made lazily because `prometheus_client` chooses between its in-memory and its
multiprocess storage once, from `PROMETHEUS_MULTIPROC_DIR`, when it is imported: `adapter
serve` with several web processes sets that variable (`multiprocess_metrics`) before
anything here is first used, so the parent's push and pull figures and every web process's
request figures land in one folder that each `/metrics` answer adds up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a read by id (a millisecond) to a slow EHR's Bundle (tens of seconds).
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Series:
    requests: Counter
    request_seconds: Histogram
    push_outcomes: Counter
    pull_outcomes: Counter
    ehr_seconds: Histogram
    audit_queue: Gauge


_MAKING = threading.Lock()


def series() -> Series:
    """The process's series, made at the first call. Under a lock: the push worker's sending
    threads may all call first at once, and a second registration of a name is an error
    (`DuplicateTimeseries`) that failed those sends."""
    with _MAKING:
        return _series()


@cache
def _series() -> Series:
    from prometheus_client import Counter, Gauge, Histogram

    return Series(
        requests=Counter(
            "adapter_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
        ),
        request_seconds=Histogram(
            "adapter_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        ),
        push_outcomes=Counter(
            "adapter_push_outcomes",
            "Resources pushed to the EHR, by the class of the EHR's status (none: no answer)",
            ["status_class"],
        ),
        pull_outcomes=Counter(
            "adapter_pull_outcomes",
            "Pages asked of the EHR by pulls, by the class of its status (none: no answer)",
            ["status_class"],
        ),
        ehr_seconds=Histogram(
            "adapter_ehr_request_duration_seconds",
            "Round trip of a call to the EHR, by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
        ),
        audit_queue=Gauge(
            "adapter_audit_queue_depth",
            "Audit records waiting for the writer (summed over web processes)",
            multiprocess_mode="livesum",
        ),
    )


@contextmanager
def multiprocess_metrics() -> Iterator[str]:
    """`PROMETHEUS_MULTIPROC_DIR` pointing at an empty folder for this process and the web
    processes it starts, for as long as the block runs (a fresh folder, removed after it,
    unless the variable names one already, which is emptied first): the folder."""
    given = os.environ.get(MULTIPROC_VARIABLE)
    folder = given or tempfile.mkdtemp(prefix="adapter-metrics-")
    for leftover in os.listdir(folder):
        path = os.path.join(folder, leftover)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    os.environ[MULTIPROC_VARIABLE] = folder
    try:
        yield folder
    finally:
        if not given:
            os.environ.pop(MULTIPROC_VARIABLE, None)
            shutil.rmtree(folder, ignore_errors=True)


def is_multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_VARIABLE))


def status_class(status: int | None) -> str:
    """`2xx`, `4xx`, ... for an HTTP status; `none` when there was no answer."""
    return "none" if status is None else f"{status // 100}xx"
