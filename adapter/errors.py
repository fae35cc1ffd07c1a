"""The adapter's error tree: every error it raises on purpose, and the HTTP status it means.

    AdapterError                  500  base of everything below
    ├── ConfigError               500  a setting was refused at startup
    ├── StoreUnavailable          503  retry  the store is migrating, down, or lost a write race
    ├── StoreCopyRefused          500  stop   `adapter copy-store` refused its source or
    │                                         target (not at the newest schema, not empty)
    ├── RequestRefused            400  stop   the caller's request cannot be served as sent
    │   ├── NotAuthenticated      401  stop   no API key, or not one we know
    │   ├── TokenRequestRefused   400  stop   the token endpoint refused (RFC 6749 `error`)
    │   │   └── InvalidClient     401  stop   the client or its assertion is not recognised
    │   ├── InsufficientScope     403  stop   the key lacks the scope the endpoint needs
    │   ├── NotFound              404  stop   nothing by that id for the caller's tenant
    │   ├── MethodNotAllowed      405  stop   a write on the read-only FHIR API
    │   ├── NotAcceptable         406  stop   a format other than JSON was asked for
    │   ├── IdempotencyKeyBusy    409  retry  a request with the same key is being processed
    │   ├── IdConflict            409  stop   ids the contract's identity rules forbid here
    │   ├── EncounterNotSent      409  stop   a record names an encounter not sent yet
    │   ├── Gone                  410  stop   the resource (or that version) was deleted
    │   ├── UnsupportedMediaType  415  stop   the body is not `application/json`
    │   ├── InvalidIdempotencyKey 400  stop   the `Idempotency-Key` header is unusable
    │   ├── IdempotencyKeyReused  422  stop   the key was first used with another body
    │   ├── TooManyExports        429  retry  the client already runs as many exports as allowed
    │   ├── TooCostly             422  stop   a read ran past its time budget, or beyond what
    │   │                                     the store can evaluate (adapter.store.budget)
    │   ├── SubscriptionRefused   422  stop   a Subscription the backport profile or our
    │   │   │                                 topics refuse; the message names the field
    │   │   └── EndpointRefused   422  stop   its endpoint: not https, or a private address
    │   │                                     not listed in ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS
    │   └── InvalidDocument       422  stop   the document breaks the contract; `errors` lists it
    │       └── MalformedDocument 400  stop   not UTF-8 JSON at all
    └── EhrError                  502  the configured EHR gave no usable answer
        ├── EhrUnavailable        503  retry  no connection, reset, or the EHR answered 5xx
        ├── EhrTimeout            504  retry  no answer within the configured timeout, or 408
        ├── EhrRateLimited        503  retry  429, or a request held back because the EHR
        │                                     asked for a pause (`Retry-After`)
        ├── EhrContention         503  retry  409: a concurrent write got in the way
        ├── EhrBadResponse        502  stop   an answer, but not what FHIR promises
        ├── EhrConflict           409  stop   412 after If-Match: the EHR's copy has moved on
        ├── EhrAmbiguousMatch     502  stop   412 from a conditional operation: several matches
        └── EhrRejected           502  stop   any other 4xx, carrying the OperationOutcome
            ├── EhrNotFound       404  stop   404 or 410 on a read
            └── EhrAuthFailed     502  stop   401/403, or the token endpoint refused us

    Signal                             not errors of a request: news passed between the
    │                                  adapter's own parts, caught where they are meant to be
    ├── BodyTooLarge                   a streamed body passed the limit (answered as 413)
    ├── JwksUnavailable                the JWKS could not be read (the cached keys are kept)
    ├── PullBusy                       another pull holds the tenant's lease
    ├── PullStopped                    the service is stopping; the pull ended cleanly
    ├── ExportCancelled                an export's job was cancelled while its files were written
    ├── NotSignedIn                    a console page without a session (to the sign-in page)
    ├── SignInRefused                  a console credential unknown or without console scopes
    ├── ConsoleRefused                 a console action refused (shown to the operator)
    └── PortInUse                      the address `adapter serve` is to listen on is taken

`retry` means `retryable` is True: the same request may succeed later, so a worker backs
off and sends it again (or a clinic retries its request); `stop` means it will fail the same
way until someone acts. Any `EhrError` may carry `retry_after`: the seconds the EHR asked us
to wait (its `Retry-After` on a 429 or 503, capped), which every retry honours.

Library errors (requests, SQLAlchemy, pydantic) are caught at the seam that calls the library
and re-raised as the most specific class here (`raise ... from exc`). Each class carries its
HTTP status and a stable machine-readable `code`, and turns itself into an RFC 9457 problem
detail (with `headers()` to send beside it). Messages never hold secrets, URLs with query
strings, or clinical content: `InvalidDocument` keeps its field errors (whose messages may
quote the document) in `errors`, for the caller's problem detail only. New branches join
this tree as they are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mappings.errors import FieldError
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

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry beside the problem detail (none by default)."""
        return {}


class ConfigError(AdapterError):
    """A setting (an `ADAPTER_*` variable) was refused; the message names the variable."""

    code = "config-error"
    title = "Invalid configuration"


class StoreUnavailable(AdapterError):
    """The store cannot take the request now: still migrating, unreachable, or a concurrent
    write of the same records won; the same request may succeed in a moment."""

    status_code = 503
    code = "store-unavailable"
    title = "Store unavailable"
    retryable = True
    retry_after_seconds: ClassVar[int] = 2

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class StoreCopyRefused(AdapterError):
    """`adapter copy-store` will not copy: the source is not a store at the newest schema,
    or the target already holds data; nothing was written. The message says which."""

    code = "store-copy-refused"
    title = "Store copy refused"


class RequestRefused(AdapterError):
    """The caller's request cannot be served as it was sent; base of the clinic API's 4xx."""

    status_code = 400
    code = "bad-request"
    title = "Bad request"


class NotAuthenticated(RequestRefused):
    """No `Authorization: Bearer` API key, or a key we do not know (RFC 6750 401)."""

    status_code = 401
    code = "not-authenticated"
    title = "Not authenticated"

    def __init__(self, message: str, *, token_given: bool = False) -> None:
        super().__init__(message)
        self.token_given = token_given

    def headers(self) -> dict[str, str]:
        # RFC 6750 3.1: no error code when the request carried no credentials at all.
        challenge = 'Bearer error="invalid_token"' if self.token_given else "Bearer"
        return {"WWW-Authenticate": challenge}


class TokenRequestRefused(RequestRefused):
    """A token request the SMART token endpoint refuses, with its RFC 6749 `error` code
    (`invalid_grant`, `invalid_scope`, `unsupported_grant_type`, `invalid_request`)."""

    code = "token-request-refused"
    title = "Token request refused"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error

    def oauth_error(self) -> dict[str, str]:
        """This refusal as the RFC 6749 section 5.2 error body."""
        return {"error": self.error, "error_description": str(self)}


class InvalidClient(TokenRequestRefused):
    """The client is unknown or its assertion could not be verified (RFC 6749 401)."""

    status_code = 401
    code = "invalid-client"
    title = "Invalid client"

    def __init__(self, description: str) -> None:
        super().__init__("invalid_client", description)


class InsufficientScope(RequestRefused):
    """A known API key without the scope the endpoint needs (RFC 6750 403)."""

    status_code = 403
    code = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the scope {scope}")
        self.scope = scope

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


class NotFound(RequestRefused):
    """Nothing by that id for the caller's tenant (another tenant's record looks the same)."""

    status_code = 404
    code = "not-found"
    title = "Not found"


class MethodNotAllowed(RequestRefused):
    """The FHIR API here is read-only."""

    status_code = 405
    code = "method-not-allowed"
    title = "Method not allowed"

    def headers(self) -> dict[str, str]:
        return {"Allow": "GET"}


class NotAcceptable(RequestRefused):
    """The caller asked for a format other than JSON (`_format` or `Accept`)."""

    status_code = 406
    code = "not-acceptable"
    title = "Not acceptable"


class TooManyExports(RequestRefused):
    """A `$export` kick-off from a client already running as many exports as it may."""

    status_code = 429
    code = "too-many-exports"
    title = "Too many exports"
    retryable = True
    retry_after_seconds: ClassVar[int] = 30

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class IdempotencyKeyBusy(RequestRefused):
    """A request with the same `Idempotency-Key` is still being processed."""

    status_code = 409
    code = "idempotency-key-in-use"
    title = "Idempotency key in use"
    retryable = True

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass(frozen=True)
class IdRefusal:
    """One id of a document that the identity rules refuse: its field path, the id as the
    caller sent it, and why (never naming or hinting at any other tenant)."""

    field: str
    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class IdConflict(RequestRefused):
    """The document's ids break the contract's identity rules (an encounter keeps its
    patient for good; an id written for one tenant is never written for another): it is
    refused whole, and nothing changes. `refusals` names each field and id."""

    status_code = 409
    code = "id-conflict"
    title = "Identifier conflict"

    def __init__(self, refusals: list[IdRefusal]) -> None:
        super().__init__(f"the document's ids break the identity rules ({len(refusals)} ids)")
        self.refusals = refusals

    def problem_detail(self) -> dict[str, object]:
        found = [{"field": r.field, "id": r.id, "message": r.message} for r in self.refusals]
        return super().problem_detail() | {"errors": found}


class EncounterNotSent(RequestRefused):
    """A per-record submission names a patient or encounter the clinic has not sent (409).

    `field` names the submission's field (`patient_mrn` or `encounter_id`); the message
    never quotes its value.
    """

    status_code = 409
    code = "encounter-not-sent"
    title = "Encounter not sent yet"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def problem_detail(self) -> dict[str, object]:
        return super().problem_detail() | {"errors": [{"field": self.field, "message": str(self)}]}


class Gone(RequestRefused):
    """The resource (or that version of it) was deleted."""

    status_code = 410
    code = "gone"
    title = "Gone"


class UnsupportedMediaType(RequestRefused):
    """The request body is not declared as `application/json` (UTF-8)."""

    status_code = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class InvalidIdempotencyKey(RequestRefused):
    """The `Idempotency-Key` header is empty, too long, or not printable ASCII."""

    code = "invalid-idempotency-key"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyReused(RequestRefused):
    """The `Idempotency-Key` was first used with a different body."""

    status_code = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class TooCostly(RequestRefused):
    """A read asked more than the store will do for one request: a statement ran past the
    time budget (`ADAPTER_STATEMENT_TIMEOUT_MS`), or the database refused the statement as
    too large. The request's fault, so never 503: sent again, it fails the same way."""

    status_code = 422
    code = "too-costly"
    title = "Request too costly"


class SubscriptionRefused(RequestRefused):
    """A Subscription we cannot serve as sent; the message names the element at fault."""

    status_code = 422
    code = "invalid-subscription"
    title = "Invalid Subscription"


class EndpointRefused(SubscriptionRefused):
    """A notification endpoint that would open a door into the network: not `https`, or
    resolving to a loopback, link-local or private address, and not a host the operator
    listed (`ADAPTER_SUBSCRIPTION_ALLOWED_HOSTS`). The message never quotes the URL."""

    code = "endpoint-refused"
    title = "Notification endpoint refused"


class InvalidDocument(RequestRefused):
    """The document breaks the clinic contract; `errors` names every bad field.

    The messages may quote the document, so they appear in the caller's problem detail
    (`errors`: [{field, message}]) and never in `str(self)`, which only counts them.
    """

    status_code = 422
    code = "invalid-document"
    title = "Invalid clinic document"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"the document breaks the clinic contract ({len(errors)} errors)")
        self.errors = errors

    def problem_detail(self) -> dict[str, object]:
        fields = [{"field": e.path, "message": e.message} for e in self.errors]
        return super().problem_detail() | {"errors": fields}


class MalformedDocument(InvalidDocument):
    """The body is not UTF-8 JSON at all, so no field can be named (the error is at `$`)."""

    status_code = 400
    code = "malformed-document"
    title = "Malformed JSON document"


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
        self.retry_after: float | None = None
        """Seconds the EHR asked us to wait before the next request (`Retry-After`), if it did."""


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
    """The EHR asked us to slow down (429), or a request was held back because it asked for a
    pause a moment ago; `retry_after` is its wish in seconds, if given."""

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


class Signal(Exception):
    """Base of what the adapter's parts tell each other by raising; never sent to a caller."""


class BodyTooLarge(Signal):
    """Raised inside `receive` when a streamed body passes the limit."""


class JwksUnavailable(Signal):
    """The JWKS could not be fetched or read (the message names why, never a key)."""


class PullBusy(Signal):
    """Another pull holds the tenant's lease."""


class PullStopped(Signal):
    """The service is shutting down: the pull ended after its last committed page."""


class PortInUse(Signal):
    """The address to listen on is taken by another program."""


class ExportCancelled(Signal):
    """The export job's row is gone: it was cancelled while its files were being written."""


class NotSignedIn(Signal):
    """A console page asked for without a session: answered by the sign-in page."""


class SignInRefused(Signal):
    """The credential is unknown, or grants no console access."""


class ConsoleRefused(Signal):
    """An action refused: why, in words an operator understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
