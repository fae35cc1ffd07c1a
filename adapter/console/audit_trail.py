"""Console actions in the audit trail, under the operator's name."""

from __future__ import annotations

from fastapi import Request

from adapter.api.middleware.audit import AuditRecord, AuditWriter
from adapter.console.session import Operator


async def record_action(
    request: Request,
    operator: Operator,
    action: str,
    target: str,
    count: int,
    outcome: str,
    tenant: str | None = None,
) -> None:
    """Queue an audit row: `action` (`console-replay`, ...) on `target` by the operator, in
    the trail of `tenant` (the one acted on; the operator's own when None)."""
    writer: AuditWriter = request.app.state.audit_writer
    now = request.app.state.clock()
    owner = tenant or operator.tenant
    record = AuditRecord(now, owner, operator.name, action, target, count, outcome)
    await writer.submit_waiting(record)
