"""Trying a call to the EHR again while its failure is retryable, at the pace it asks for.

For the one-shot readers (`adapter pull`'s first probe, `adapter reconcile`): a retryable
`EhrError` (connection lost, timeout, 429, 5xx) is tried again after the backoff, or after
the EHR's `Retry-After` when it gave one; past `attempts` tries, or on any other error, the
error leaves to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from adapter.errors import EhrError
from adapter.sync.push.worker import Backoff

T = TypeVar("T")

log = logging.getLogger(__name__)


def retried(
    call: Callable[[], T], *, attempts: int, backoff: Backoff, sleep: Callable[[float], None]
) -> T:
    """`call()`'s result, trying up to `attempts` times while its failure is retryable."""
    for attempt in range(1, attempts):
        try:
            return call()
        except EhrError as exc:
            if not exc.retryable:
                raise
            delay = backoff.delay(attempt, exc.retry_after)
            log.info("EHR call failed (%s); retrying in %.1f s", exc.code, delay)
            sleep(delay)
    return call()
