"""What the EHR did with each entry of a Bundle we sent: `BundleResult` and its parsing.

A batch answers 200 whatever its entries did, so every `entry.response.status` is read;
a response that cannot be matched entry for entry to the request is an `EhrBadResponse`,
never a guess. Results hold what the push worker records: the EHR's location (type, id,
version), ETag and lastModified, or the status and OperationOutcome of a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from adapter.ehr.batch import entry_resource_type, request_of
from adapter.ehr.outcome import error_for_status
from adapter.errors import EhrBadResponse, EhrError
from mappings.common.lookup import obj, objs, str_field
from mappings.jsontypes import JsonObject, JsonValue

BundleMode = Literal["transaction", "batch"]


@dataclass(frozen=True)
class EntryResult:
    """The EHR's answer to one entry; `index` is the entry's position in the Bundle sent."""

    index: int
    resource_type: str
    status: int
    request_url: str = field(repr=False)
    location: str | None = field(default=None, repr=False)
    etag: str | None = None
    last_modified: str | None = None
    outcome: JsonObject | None = field(default=None, repr=False)
    if_match: bool = field(default=False, repr=False)
    cause: EhrError | None = field(default=None, repr=False)
    """For an entry of a chunk that failed as a whole (or was never sent after it): that
    chunk's error; `status` is then its HTTP status, or 0 when no answer came."""

    @property
    def is_success(self) -> bool:
        return self.cause is None and 200 <= self.status < 300

    @property
    def error(self) -> EhrError | None:
        """What this entry's failure means, as the error a single request would have raised."""
        if self.cause is not None:
            return self.cause
        if self.is_success:
            return None
        what = f"entry {self.index} ({self.resource_type})"
        return error_for_status(self.status, what, outcome=self.outcome, if_match=self.if_match)

    @property
    def is_retryable(self) -> bool:
        error = self.error
        return error is not None and error.retryable

    @property
    def resource_id(self) -> str | None:
        return _location_parts(self.location)[1]

    @property
    def version_id(self) -> str | None:
        """From the location's `_history/<vid>`, else from the ETag `W/"<vid>"`."""
        version = _location_parts(self.location)[2]
        if version is None and self.etag:
            version = self.etag.removeprefix("W/").strip('"') or None
        return version


@dataclass(frozen=True)
class BundleResult:
    """Every entry's answer, in the order the entries were sent."""

    mode: BundleMode
    entries: tuple[EntryResult, ...]
    posts: int = 1
    """How many Bundles were POSTed: 1, plus one per round of retried batch entries, or
    one per chunk of a transaction cut into several (`adapter.ehr.chunks`)."""

    @property
    def is_success(self) -> bool:
        return all(e.is_success for e in self.entries)

    @property
    def failures(self) -> tuple[EntryResult, ...]:
        return tuple(e for e in self.entries if not e.is_success)


def entry_results(
    body: JsonObject, mode: BundleMode, sent: Sequence[tuple[int, JsonObject]]
) -> list[EntryResult]:
    """One result per sent `(index, entry)`, read from a `{mode}-response` Bundle."""
    if body.get("resourceType") != "Bundle" or body.get("type") != f"{mode}-response":
        raise EhrBadResponse(f"the EHR's answer to a {mode} is not a {mode}-response Bundle")
    answers = body.get("entry", [])
    if not isinstance(answers, list) or len(objs(answers)) != len(sent):
        raise EhrBadResponse(f"the EHR's {mode}-response does not answer every entry")
    return [_entry_result(i, e, a) for (i, e), a in zip(sent, objs(answers), strict=True)]


def unanswered(sent: Sequence[tuple[int, JsonObject]], cause: EhrError) -> list[EntryResult]:
    """Results for entries of a chunk that failed as a whole, or that were never sent."""
    return [
        EntryResult(
            index=i,
            resource_type=entry_resource_type(entry),
            status=cause.http_status or 0,
            request_url=str_field(request_of(entry), "url") or "",
            outcome=cause.outcome,
            if_match="ifMatch" in request_of(entry),
            cause=cause,
        )
        for i, entry in sent
    ]


def _entry_result(index: int, sent: JsonObject, answer: JsonObject) -> EntryResult:
    response = obj(answer.get("response"))
    request = request_of(sent)
    return EntryResult(
        index=index,
        resource_type=entry_resource_type(sent),
        status=_status(response.get("status"), index),
        request_url=str_field(request, "url") or "",
        location=str_field(response, "location"),
        etag=str_field(response, "etag"),
        last_modified=str_field(response, "lastModified"),
        outcome=_outcome(response.get("outcome")),
        if_match="ifMatch" in request,
    )


def _status(status: JsonValue, index: int) -> int:
    """`"201 Created"` -> 201; FHIR says the status starts with the 3-digit code."""
    code = status.split(maxsplit=1)[0] if isinstance(status, str) and status.strip() else ""
    if len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise EhrBadResponse(f"entry {index} of the EHR's answer has no response.status")
    return int(code)


def _outcome(value: JsonValue) -> JsonObject | None:
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
        return obj(value)
    return None


def _location_parts(location: str | None) -> tuple[str | None, str | None, str | None]:
    """(type, id, version) of `Type/id/_history/vid`, relative or absolute."""
    if not location:
        return None, None, None
    parts = location.split("?", 1)[0].rstrip("/").split("/")
    version = None
    if len(parts) >= 4 and parts[-2] == "_history":
        version, parts = parts[-1], parts[:-2]
    if len(parts) < 2:
        return None, None, version
    return parts[-2], parts[-1], version
