"""What the console shows of a FHIR Subscription: never more than an operator needs.

The endpoint is shown as `scheme://host[:port]` only: its path, query, user part and the
channel's headers can carry the receiver's credentials. The last error is shown by its
class (`ReceiverRefused`, `ReceiverTimeout`...), the part before `:` as the audit gives it:
never the text a receiver answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from adapter.store.subscription_topics import TOPIC_BASE
from adapter.store.subscriptions import ERROR, OFF, Stored

RESTARTABLE = (ERROR, OFF)


@dataclass(frozen=True)
class SubscriptionRow:
    public_id: str
    tenant: str
    topic: str
    status: str
    endpoint: str
    content: str
    events: int
    last_sent_at: datetime | None
    failures: int
    error_class: str
    """Empty when the last delivery did not fail."""

    @property
    def restartable(self) -> bool:
        return self.status in RESTARTABLE


def subscription_row(sub: Stored) -> SubscriptionRow:
    return SubscriptionRow(
        public_id=sub.public_id,
        tenant=sub.tenant,
        topic=sub.spec.topic.removeprefix(TOPIC_BASE),
        status=sub.status,
        endpoint=origin(sub.spec.endpoint),
        content=sub.spec.content,
        events=sub.events_count,
        last_sent_at=sub.last_sent_at,
        failures=sub.failures,
        error_class=error_class(sub.last_error),
    )


def origin(url: str) -> str:
    """`https://receiver.example.org:8443` of `https://user:pw@receiver.example.org:8443/a?b`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(not a valid URL)"
    host = parts.hostname or ""
    if not parts.scheme or not host:
        return "(not a valid URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def error_class(error: str | None) -> str:
    return (error or "").split(":", 1)[0].strip()[:32]
