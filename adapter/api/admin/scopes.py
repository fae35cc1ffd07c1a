"""The operator's scopes: `admin/<resource>.<access>`, each guarding one kind of action.

`admin/metrics.read` reads `/metrics`; `admin/console.read` signs in to `/console` and sees
its pages; `admin/outbox.write` replays dead letters; `admin/conflicts.write` settles
conflicts; `admin/reconcile.write` starts a reconcile; `admin/subscriptions.write` restarts
the delivery of a FHIR Subscription in error; `admin/AuditEvent.rs` reads the
audit trail (`adapter.api.admin.audit_events`). A `*` in either part grants every value there
(`admin/*.read`, `admin/outbox.*`, `admin/*.*`). No `clinic/` or `system/` scope grants any
of them, so a clinic's key never opens the operator's view.
"""

from __future__ import annotations

from collections.abc import Iterable

METRICS_READ = "admin/metrics.read"
CONSOLE_READ = "admin/console.read"
OUTBOX_WRITE = "admin/outbox.write"
CONFLICTS_WRITE = "admin/conflicts.write"
RECONCILE_WRITE = "admin/reconcile.write"
SUBSCRIPTIONS_WRITE = "admin/subscriptions.write"
ADMIN_SCOPES = (
    METRICS_READ,
    CONSOLE_READ,
    OUTBOX_WRITE,
    CONFLICTS_WRITE,
    RECONCILE_WRITE,
    SUBSCRIPTIONS_WRITE,
)


def grants(held: str, needed: str) -> bool:
    """Whether the scope `held` grants `needed` (one of `ADMIN_SCOPES`)."""
    resource, _, access = needed.removeprefix("admin/").partition(".")
    return held in {needed, f"admin/*.{access}", f"admin/{resource}.*", "admin/*.*"}


def holds(scopes: Iterable[str], needed: str) -> bool:
    """Whether any of `scopes` grants `needed`."""
    return any(grants(held, needed) for held in scopes)


def grants_any(held: str) -> bool:
    """Whether `held` grants one of the operator's scopes (the keys file's check)."""
    return any(grants(held, needed) for needed in ADMIN_SCOPES)
