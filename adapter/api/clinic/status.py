"""What became of a clinic submission, read from its outbox entry and the deliveries.

    no outbox entry (it changed nothing)  -> unchanged
    pending, in_flight                    -> stored    waiting, being pushed, or retrying
    done                                  -> pushed    with the EHR's references, if recorded
    dead                                  -> failed    with the EHR's HTTP status and diagnostics
                                                       (or, retries given up, the last error)
    conflict                              -> conflict  the same, for the EHR's 412

Everything is read within the caller's tenant: another tenant's submission is not found.
A submission is known by its public id (random since migration 0007; the number, for one
received before), never by the store's number, which counts every tenant's submissions.
The EHR's diagnostics may quote the record; they go to the clinic that sent it, never to a
log. Several submissions of one encounter can share an outbox entry (a resend merged into
work still waiting), and then share its status.
"""

from __future__ import annotations

import orjson

from adapter.store import submissions
from adapter.store.engine import Connection
from adapter.store.outbox import CONFLICT, DEAD, DONE, IN_FLIGHT, PENDING

STATUS_OF_STATE = {
    PENDING: "stored",
    IN_FLIGHT: "stored",
    DONE: "pushed",
    DEAD: "failed",
    CONFLICT: "conflict",
}
UNCHANGED = "unchanged"


def status_url(public_id: str) -> str:
    return f"/clinic/submissions/{public_id}"


def submission_status(conn: Connection, tenant: str, public_id: str) -> dict[str, object] | None:
    """The submission's status document, or None when the tenant has no such submission."""
    submission = submissions.find(conn, tenant, public_id)
    if submission is None:
        return None
    found: dict[str, object] = {
        "submission_id": public_id,
        "encounter_id": submission.encounter_key,
        "received_at": submission.received_at.isoformat(),
        "status": UNCHANGED,
        "status_url": status_url(public_id),
    }
    if submission.outbox_id is None:
        return found
    entry = submissions.entry_state(conn, tenant, submission.outbox_id)
    found["status"] = STATUS_OF_STATE[entry.state]
    found["attempts"] = entry.attempts
    if entry.state == DONE:
        found["ehr_references"] = [
            {
                "resource": d.resource_key,
                "ehr_reference": d.ehr_reference,
                "ehr_version": d.ehr_version,
            }
            for d in submissions.delivered(conn, tenant, submission.outbox_id)
        ]
    elif entry.state in (DEAD, CONFLICT):
        found["reason"] = _reason(entry.last_status, entry.outcome)
    return found


def _reason(http_status: int | None, kept_outcome: str | None) -> dict[str, object]:
    """The EHR's HTTP status and the diagnostics of its OperationOutcome's issues; for an
    entry whose retries were given up, the last error's code and the attempts made."""
    kept = orjson.loads(kept_outcome) if kept_outcome else {}
    kept = kept if isinstance(kept, dict) else {}
    outcome = kept.get("operation_outcome")
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    diagnostics = [_diagnostic(i) for i in issues] if isinstance(issues, list) else []
    found: dict[str, object] = {
        "http_status": http_status,
        "diagnostics": [d for d in diagnostics if d],
    }
    if isinstance(kept.get("gave_up_after_attempts"), int):
        found["error"] = kept.get("error")
        found["gave_up_after_attempts"] = kept["gave_up_after_attempts"]
    return found


def _diagnostic(issue: object) -> str | None:
    if not isinstance(issue, dict):
        return None
    text = issue.get("diagnostics")
    if not isinstance(text, str):
        details = issue.get("details")
        text = details.get("text") if isinstance(details, dict) else None
    return text if isinstance(text, str) else None
