"""The EHR's pace: how long it asked us to wait (`Retry-After`), and a gate that keeps to it.

An EHR that throttles answers 429, or 503 while it is busy or down for maintenance, with
`Retry-After`: a delay in seconds or an HTTP date. `retry_after_of` reads it from such an
answer, capped at a maximum (ADAPTER_EHR_RETRY_AFTER_MAX_SECONDS) so that a wild value
cannot park the adapter for days. A `Pace` remembers the moment the EHR named: until then
every request through it is held back, unsent, as `EhrRateLimited` carrying the time left.
One throttled answer so slows down every caller sharing the client (the push worker's
threads, a pull, a reconcile, the token endpoint's users), not only the one that got it;
each caller retries after the error's `retry_after`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import requests

from adapter.errors import EhrRateLimited

Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (`time.time`), replaced by a fake one in tests."""

# Five minutes: longer than a throttling EHR asks for in practice, short enough that a wrong
# header (a date a year ahead) does not silence the adapter for good.
DEFAULT_RETRY_AFTER_MAX_SECONDS = 300.0
# The statuses whose Retry-After asks a client to come back later (RFC 9110 10.2.3, 6585 4).
PACED_STATUSES = frozenset({429, 503})


def retry_after_seconds(
    value: str | None, now: float, max_seconds: float = DEFAULT_RETRY_AFTER_MAX_SECONDS
) -> float | None:
    """A `Retry-After` value (delay in seconds, or an HTTP date) as seconds from `now`, at
    most `max_seconds`; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), max_seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - now), max_seconds)


def retry_after_of(
    reply: requests.Response, now: float, max_seconds: float = DEFAULT_RETRY_AFTER_MAX_SECONDS
) -> float | None:
    """The wait a 429 or 503 answer asks for; None for other statuses or without the header."""
    if reply.status_code not in PACED_STATUSES:
        return None
    return retry_after_seconds(reply.headers.get("Retry-After"), now, max_seconds)


class Pace:
    """The earliest moment the EHR accepts our next request, as its last `Retry-After` said."""

    def __init__(
        self, clock: Clock, *, max_seconds: float = DEFAULT_RETRY_AFTER_MAX_SECONDS
    ) -> None:
        self._clock = clock
        self.max_seconds = max_seconds
        self._not_before = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pace(max_seconds={self.max_seconds:g}, held={self.remaining():.1f})"

    def retry_after(self, reply: requests.Response) -> float | None:
        """The wait `reply` asks for (see `retry_after_of`), remembered for every request."""
        seconds = retry_after_of(reply, self._clock(), self.max_seconds)
        self.hold(seconds)
        return seconds

    def hold(self, seconds: float | None) -> None:
        """Send nothing for `seconds` (a wait learnt elsewhere: the token endpoint's)."""
        if seconds:
            with self._lock:
                self._not_before = max(self._not_before, self._clock() + seconds)

    def remaining(self) -> float:
        """Seconds until the EHR takes requests again by its last word; 0 when it does now."""
        with self._lock:
            return max(0.0, self._not_before - self._clock())

    def check(self, what: str) -> None:
        """Raise `EhrRateLimited` (with the time left) while the EHR's pause lasts."""
        left = self.remaining()
        if left > 0:
            raise EhrRateLimited(
                f"{what} held back: the EHR asked for a pause, {left:.1f} s more",
                retry_after=left,
            )
