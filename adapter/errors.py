"""The adapter's error tree: every error it raises on purpose, and the HTTP status it means.

    AdapterError                  500  base of everything below
    ├── ConfigError               500  a setting was refused at startup
    └── EhrError                  502  the configured EHR gave no usable answer
        ├── EhrUnavailable        503  retry  no connection, reset, or the EHR answered 5xx
        ├── EhrTimeout            504  retry  no answer within the configured timeout, or 408
        ├── EhrRateLimited        503  retry  429: come back after `retry_after` seconds
        ├── EhrContention         503  retry  409: a concurrent write got in the way
        ├── EhrBadResponse        502  stop   an answer, but not what FHIR promises
        ├── EhrConflict           409  stop   412 after If-Match: the EHR's copy has moved on
        ├── EhrAmbiguousMatch     502  stop   412 from a conditional operation: several matches
        └── EhrRejected           502  stop   any other 4xx, carrying the OperationOutcome
            ├── EhrNotFound       404  stop   404 or 410 on a read
            └── EhrAuthFailed     502  stop   401/403, or the token endpoint refused us

`retry` means `retryable` is True: the same request may succeed later, so a worker backs
off and sends it again; `stop` means it will fail the same way until someone acts.

Library errors (requests, SQLAlchemy, pydantic) are caught at the seam that calls the library
and re-raised as the most specific class here (`raise ... from exc`). Each class carries its
HTTP status and a stable machine-readable `code`, and turns itself into an RFC 9457 problem
detail. Messages never hold secrets, URLs with query strings, or clinical content. New
branches (store, sync, validation) join this tree as they are built.
"""

from __future__ import annotations

from typing import ClassVar

from mappings.jsontypes import JsonObject

PROBLEM_TYPE_BASE = "urn:ketamine-fhir-adapter:problem:"


class AdapterError(Exception):
    """Base of every error the adapter raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "adapter-error"
    title: ClassVar[str] = "Adapter error"
    retryable: ClassVar[bool] = False

    def problem_detail(self) -> dict[str, object]:
        """This error as an RFC 9457 problem detail (the clinic-facing error format)."""
        return {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status_code,
            "detail": str(self),
        }


class ConfigError(AdapterError):
    """A setting (an `ADAPTER_*` variable) was refused; the message names the variable."""

    code = "config-error"
    title = "Invalid configuration"


class EhrError(AdapterError):
    """The configured EHR did not give a usable answer.

    `outcome` is the EHR's OperationOutcome when it sent one; it may quote clinical data,
    so it is kept for the dead-letter record and never put in the message or a log.
    """

    status_code = 502
    code = "ehr-error"
    title = "EHR error"

    def __init__(self, message: str, *, outcome: JsonObject | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.http_status: int | None = None
        """The EHR's HTTP status when it answered one (None: no answer, or not HTTP's fault)."""


class EhrUnavailable(EhrError):
    """The EHR could not be reached, reset the connection, or answered 5xx."""

    status_code = 503
    code = "ehr-unavailable"
    title = "EHR unavailable"
    retryable = True


class EhrTimeout(EhrError):
    """The EHR did not answer within the configured timeout, or itself timed out (408)."""

    status_code = 504
    code = "ehr-timeout"
    title = "EHR timeout"
    retryable = True


class EhrRateLimited(EhrError):
    """The EHR asked us to slow down (429); `retry_after` is its wish in seconds, if given."""

    status_code = 503
    code = "ehr-rate-limited"
    title = "EHR rate limit"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, outcome: JsonObject | None = None
    ) -> None:
        super().__init__(message, outcome=outcome)
        self.retry_after = retry_after


class EhrContention(EhrError):
    """409: the EHR refused a write because another one was in progress on the same data."""

    status_code = 503
    code = "ehr-contention"
    title = "EHR write contention"
    retryable = True


class EhrBadResponse(EhrError):
    """The EHR answered, but not with what the FHIR specification promises."""

    status_code = 502
    code = "ehr-bad-response"
    title = "Unexpected EHR response"


class EhrConflict(EhrError):
    """412 after `If-Match`: the EHR's copy changed since we read it; reconcile, never overwrite."""

    status_code = 409
    code = "ehr-conflict"
    title = "EHR version conflict"


class EhrAmbiguousMatch(EhrError):
    """A conditional operation matched several resources on the EHR, so it did nothing."""

    status_code = 502
    code = "ehr-ambiguous-match"
    title = "Several EHR resources match"


class EhrRejected(EhrError):
    """The EHR refused the request for good (4xx); `outcome` says why."""

    status_code = 502
    code = "ehr-rejected"
    title = "EHR rejected the request"


class EhrNotFound(EhrRejected):
    """The resource asked for does not exist on the EHR (404), or no longer (410)."""

    status_code = 404
    code = "ehr-not-found"
    title = "Not found on the EHR"


class EhrAuthFailed(EhrRejected):
    """The EHR or its token endpoint refused our credentials (401/403), even after a refresh."""

    status_code = 502
    code = "ehr-auth-failed"
    title = "EHR refused our credentials"
