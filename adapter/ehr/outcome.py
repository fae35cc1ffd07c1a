"""What an EHR's failure answer means: its status and OperationOutcome, read as an `EhrError`.

One function, `error_for_status`, classifies a whole reply and each entry of a batch
alike. The OperationOutcome's text is only matched against patterns, never logged or
copied into a message: EHRs quote the data they refused.
"""

from __future__ import annotations

import re

import requests

from adapter.errors import (
    EhrAmbiguousMatch,
    EhrAuthFailed,
    EhrConflict,
    EhrContention,
    EhrError,
    EhrNotFound,
    EhrRateLimited,
    EhrRejected,
    EhrTimeout,
    EhrUnavailable,
)
from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject

# How servers say a conditional operation found several resources (HAPI: "this search
# matched 2 resources") or that a version precondition failed.
SEVERAL_MATCHES = re.compile(
    r"\bmultiple\b|more than one|matched [2-9]|[2-9]\d* (resources )?match"
)
# A 409 saying the version named by If-Match is not the current one (HAPI: HAPI-0989). Narrow
# on purpose: HAPI's contention 409s also speak of "version constraint" failures.
NOT_CURRENT_VERSION = re.compile(r"not the current version")
VERSION_MISMATCH = re.compile(r"\bversion\b|if-match|etag")
# How servers say a Bundle is too big. Deliberately narrow: falling back to a batch on any
# 400 would hide real errors behind a second, different answer.
TOO_LARGE = re.compile(
    r"too (many|large|big)|exceed\w* (the )?(max|limit|size)"
    r"|maximum (number of )?(entries|resources|bundle)"
)


def operation_outcome(reply: requests.Response) -> JsonObject | None:
    """The reply's OperationOutcome, if its body is one."""
    try:
        body: object = reply.json()
    except ValueError:
        return None
    return _as_outcome(body)


def _as_outcome(body: object) -> JsonObject | None:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return obj(body)
    return None


def outcome_text(outcome: JsonObject | None) -> str:
    """Every issue's code, details and diagnostics, lower-cased, for pattern matching only."""
    parts: list[str] = []
    for issue in objs((outcome or {}).get("issue")):
        details = obj(issue.get("details"))
        texts = [
            str_field(issue, "code"),
            str_field(issue, "diagnostics"),
            str_field(details, "text"),
        ]
        parts.extend(t for t in texts if t)
        parts.extend(t for c in objs(details.get("coding")) if (t := str_field(c, "display")))
    return " ".join(parts).lower()


def is_too_large(status: int, outcome: JsonObject | None) -> bool:
    """Whether the server refused a Bundle for its size (413, or a 4xx saying so)."""
    if status == 413:
        return True
    text = outcome_text(outcome)
    return 400 <= status < 500 and ("too-costly" in text or TOO_LARGE.search(text) is not None)


def error_for_status(
    status: int,
    what: str,
    *,
    outcome: JsonObject | None = None,
    retry_after: float | None = None,
    if_match: bool = False,
) -> EhrError:
    """The most specific `EhrError` for a failure status answered to `what`.

    `what` names the request without its URL ("a transaction", "a read of Patient").
    `if_match` says whether the request carried `If-Match`, which tells a 412 version
    conflict apart from a conditional operation's ambiguous match. `retry_after` is the wait
    the answer asked for (`adapter.ehr.pace.retry_after_of`), kept on the error.
    """
    error = _classify(
        status, f"the EHR answered HTTP {status} to {what}", outcome, retry_after, if_match
    )
    error.http_status = status
    error.retry_after = retry_after
    return error


def _classify(
    status: int,
    message: str,
    outcome: JsonObject | None,
    retry_after: float | None,
    if_match: bool,
) -> EhrError:
    if status == 429:
        return EhrRateLimited(message, retry_after=retry_after, outcome=outcome)
    if status == 408:
        return EhrTimeout(message, outcome=outcome)
    if status >= 500:
        return EhrUnavailable(message, outcome=outcome)
    if status == 409:
        # HAPI answers a failed `ifMatch` inside a transaction with 409, not 412.
        if if_match and NOT_CURRENT_VERSION.search(outcome_text(outcome)):
            return EhrConflict(message, outcome=outcome)
        return EhrContention(message, outcome=outcome)
    if status == 412:
        return _precondition_failed(message, outcome, if_match=if_match)
    if status in (401, 403):
        return EhrAuthFailed(message, outcome=outcome)
    if status in (404, 410):
        return EhrNotFound(message, outcome=outcome)
    return EhrRejected(message, outcome=outcome)


def _precondition_failed(message: str, outcome: JsonObject | None, *, if_match: bool) -> EhrError:
    text = outcome_text(outcome)
    if SEVERAL_MATCHES.search(text):
        return EhrAmbiguousMatch(message, outcome=outcome)
    if if_match or VERSION_MISMATCH.search(text):
        return EhrConflict(message, outcome=outcome)
    # Without If-Match, only a conditional URL can fail a precondition.
    return EhrAmbiguousMatch(message, outcome=outcome)
