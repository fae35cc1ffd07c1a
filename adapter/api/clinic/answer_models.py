"""The bodies the service answers with, as models: the OpenAPI document's schemas come from
them (one change flows to the document), and the tests hold real answers against them.

Clinic face: the receipt of a POST, a submission's status, RFC 9457 problem details. Health:
liveness and readiness. FHIR faces: the parts of a Bundle, an OperationOutcome and a
resource a client can rely on; FHIR allows more elements than listed, so those allow more.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.api.fhir.resource_types import SERVED_TYPES

ResourceReference = Annotated[
    str, Field(description="`<Type>/<logical id>` of a resource on this adapter's `/fhir`")
]
# The audit trail's AuditEvents travel in Bundles too (`/admin/AuditEvent`).
ResourceType = Literal[(*SERVED_TYPES, "AuditEvent", "SearchParameter")]  # type: ignore[valid-type]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Receipt(_Closed):
    """What became of a document the moment it was accepted (201: something was created)."""

    submission_id: str = Field(
        description="The submission's opaque id (32 hex digits); its status is at `status_url`"
    )
    encounter_id: str = Field(description="The contract's `encounter_id` the document is about")
    status: Literal["stored", "unchanged"] = Field(
        description="`stored`: waiting to be pushed to the EHR; `unchanged`: it changed nothing"
    )
    status_url: str = Field(description="Where to follow it: `/clinic/submissions/{id}`")
    created: list[ResourceReference] = Field(description="Resources this document created")
    updated: list[ResourceReference] = Field(description="Resources it changed")
    unchanged: list[ResourceReference] = Field(description="Resources it sent again, unchanged")
    deleted: list[ResourceReference] = Field(
        description="Resources it removed (a reading or record left out of a resend)"
    )


class DeliveredResource(_Closed):
    resource: ResourceReference
    ehr_reference: str = Field(description="What the EHR calls it: `<Type>/<EHR id>`")
    ehr_version: str | None = Field(description="The EHR's version id after the push")


class FailureReason(_Closed):
    http_status: int | None = Field(description="The EHR's HTTP status")
    diagnostics: list[str] = Field(description="The diagnostics of its OperationOutcome")
    error: str | None = Field(
        default=None,
        description="With `gave_up_after_attempts`: the last failure's code, e.g. "
        "`ehr-unavailable`, `ehr-timeout`, `ehr-rate-limited`",
    )
    gave_up_after_attempts: int | None = Field(
        default=None,
        description="Set when the EHR kept failing retryably (5xx, 429, timeouts) past the "
        "retry limit (ADAPTER_PUSH_RETRY_MAX_ATTEMPTS and _MAX_AGE_HOURS): the attempts made",
    )


class SubmissionStatus(_Closed):
    """Where a submission is on its way to the EHR."""

    submission_id: str = Field(
        description="32 hex digits; a number for submissions accepted before migration 0007"
    )
    encounter_id: str
    received_at: str = Field(description="When it was accepted (ISO 8601, UTC)")
    status: Literal["stored", "pushed", "failed", "conflict", "unchanged"] = Field(
        description="`stored`: waiting for (or being) pushed, retries included; `pushed`: the "
        "EHR holds it (`ehr_references`); `failed`: the EHR refused it for good, or kept failing "
        "past the retry limit (`reason`); "
        "`conflict`: the EHR's copy changed since ours (412, `reason`); `unchanged`: the "
        "submission changed nothing"
    )
    status_url: str
    attempts: int | None = Field(default=None, description="Pushes tried so far")
    ehr_references: list[DeliveredResource] | None = Field(
        default=None, description="With `pushed`: each resource's name on the EHR"
    )
    reason: FailureReason | None = Field(
        default=None, description="With `failed` and `conflict`: what the EHR answered"
    )


class FieldProblem(_Closed):
    field: str = Field(description="The field's path in the body, e.g. `vitals[1].pulse.value`")
    id: str | None = Field(
        default=None, description="With 409: the id the field holds, which the rules refuse"
    )
    message: str


class Problem(_Closed):
    """An RFC 9457 problem detail (`application/problem+json`)."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do, for a person")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every field at fault (422, and 400 where one can be named)"
    )
    request_id: str | None = Field(
        default=None, description="With 500: the id to find the adapter's log line by"
    )


class Health(_Closed):
    status: Literal["ok"]


class ReadinessCheck(_Closed):
    name: Literal["database", "schema", "ehr"]
    status: Literal["ok", "down", "not_configured"]
    latency_ms: float
    detail: str = Field(description="Why it is down: an error class or HTTP status, no data")


class Readiness(_Closed):
    status: Literal["ready", "not_ready"]
    checks: list[ReadinessCheck]


class _FhirElement(BaseModel):
    # FHIR resources carry many more elements than a client needs to find its way.
    model_config = ConfigDict(extra="allow")


class FhirResource(_FhirElement):
    """A FHIR R4 resource as stored: its type, id and version `meta` always present."""

    resourceType: ResourceType  # noqa: N815 (FHIR's element name)
    id: str


class OperationOutcomeIssue(_FhirElement):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str | None = None


class OperationOutcome(_FhirElement):
    """FHIR's error document: each issue's `diagnostics` says what went wrong."""

    resourceType: Literal["OperationOutcome"]  # noqa: N815
    issue: list[OperationOutcomeIssue]


class BundleLink(_FhirElement):
    relation: str = Field(description="`self`, `next` or `previous`")
    url: str


class BundleEntry(_FhirElement):
    fullUrl: str | None = None  # noqa: N815
    resource: FhirResource | OperationOutcome | None = Field(
        default=None, description="Absent in a history entry of a deletion"
    )


class Bundle(_FhirElement):
    """A `searchset` (search, `$everything`, the audit trail) or `history` Bundle."""

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["searchset", "history"]
    total: int | None = None
    link: list[BundleLink] | None = None
    entry: list[BundleEntry] | None = None


class Subscription(_FhirElement):
    """A Subscription (R4, backport profile) as held: our id, version and status."""

    resourceType: Literal["Subscription"]  # noqa: N815
    id: str
    status: Literal["requested", "active", "error", "off"]
    criteria: str
    channel: dict[str, object]


class Parameters(_FhirElement):
    """A Parameters resource: `$topic-list`, a subscription's status (backport profile)."""

    resourceType: Literal["Parameters"]  # noqa: N815
    parameter: list[dict[str, object]]


class NotificationEntry(_FhirElement):
    fullUrl: str | None = None  # noqa: N815
    resource: Subscription | Parameters | FhirResource | None = Field(
        default=None, description="Absent for a focus by id only, or a deletion"
    )


class SubscriptionBundle(_FhirElement):
    """A Bundle of Subscriptions (search), of status Parameters (`$status`), or of a
    notification's status and focus (`$events`, type history)."""

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["searchset", "history"]
    total: int | None = None
    entry: list[NotificationEntry] | None = None


class CapabilityStatement(_FhirElement):
    resourceType: Literal["CapabilityStatement"]  # noqa: N815
    fhirVersion: Literal["4.0.1"]  # noqa: N815
    rest: list[dict[str, object]]
