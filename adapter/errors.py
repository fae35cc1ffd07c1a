"""The adapter's error tree: every error it raises on purpose, and the HTTP status it means.

    AdapterError                  500  base of everything below
    ├── ConfigError               500  a setting was refused at startup
    └── EhrError                  502  the configured EHR gave no usable answer
        ├── EhrUnavailable        503  no connection, or the EHR answered 5xx
        ├── EhrTimeout            504  no answer within the configured timeout
        └── EhrBadResponse        502  an answer, but not what FHIR promises

Library errors (requests, SQLAlchemy, pydantic) are caught at the seam that calls the library
and re-raised as the most specific class here (`raise ... from exc`). Each class carries its
HTTP status and a stable machine-readable `code`, and turns itself into an RFC 9457 problem
detail. New branches (store, sync, auth, validation) join this tree as they are built.
"""

from __future__ import annotations

from typing import ClassVar

PROBLEM_TYPE_BASE = "urn:ketamine-fhir-adapter:problem:"


class AdapterError(Exception):
    """Base of every error the adapter raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "adapter-error"
    title: ClassVar[str] = "Adapter error"

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
    """The configured EHR did not give a usable answer."""

    status_code = 502
    code = "ehr-error"
    title = "EHR error"


class EhrUnavailable(EhrError):
    """The EHR could not be reached, or answered with a server error (5xx)."""

    status_code = 503
    code = "ehr-unavailable"
    title = "EHR unavailable"


class EhrTimeout(EhrError):
    """The EHR did not answer within the configured timeout."""

    status_code = 504
    code = "ehr-timeout"
    title = "EHR timeout"


class EhrBadResponse(EhrError):
    """The EHR answered, but not with what the FHIR specification promises."""

    status_code = 502
    code = "ehr-bad-response"
    title = "Unexpected EHR response"
