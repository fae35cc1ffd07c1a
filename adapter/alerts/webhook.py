"""`Webhook`: posts an `Alert` as JSON to the configured URL, at most one per kind per
interval. A failure to post is logged (its class only) and never raised: alerting must not
stop the work it reports on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import requests

log = logging.getLogger(__name__)
POST_TIMEOUT_SECONDS = 10.0

DEAD_LETTER = "dead_letter"
CONFLICT = "conflict"
EHR_UNREACHABLE = "ehr_unreachable"
OUTBOX_WAITING = "outbox_waiting"
SUBSCRIPTION_ERROR = "subscription_error"


@dataclass(frozen=True)
class Alert:
    """What the message says: ids, counts and a link, never content."""

    kind: str
    summary: str
    count: int
    console: str
    """The console page to look at."""
    ids: list[int] = field(default_factory=list)
    """Outbox entry ids (dead letters), conflict ids (conflicts), the store's numbers of
    subscriptions gone to error (subscription errors)."""
    seconds: float | None = None
    """How long (the EHR down, the oldest entry waiting)."""


class Webhook:
    def __init__(
        self,
        url: str,
        interval_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.session = session or requests.Session()
        self._last_sent: dict[str, float] = {}

    def may_send(self, kind: str) -> bool:
        """False while a message of `kind` went out less than an interval ago."""
        last = self._last_sent.get(kind)
        return last is None or self.clock() - last >= self.interval_seconds

    def send(self, alert: Alert) -> bool:
        """Post `alert` unless its kind is held back; True when the receiver took it."""
        if not self.may_send(alert.kind):
            return False
        self._last_sent[alert.kind] = self.clock()
        body = {key: value for key, value in asdict(alert).items() if value is not None}
        try:
            reply = self.session.post(self.url, json=body, timeout=POST_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            log.warning("alert %s: the webhook failed (%s)", alert.kind, type(exc).__name__)
            return False
        if not reply.ok:
            log.warning("alert %s: the webhook answered HTTP %d", alert.kind, reply.status_code)
            return False
        log.info("alert %s sent (%d)", alert.kind, alert.count)
        return True
