"""What every `/fhir` route shares: OperationOutcome errors, media types, SMART read scopes.

- `FhirRoute` (the router's route class) turns every error raised while serving a `/fhir`
  route, the dependencies' 401/403/503 included, into an OperationOutcome with the error's
  status and headers, never the clinic API's problem detail and never a trace.
- `media_type` reads `_format` (first) or `Accept`: JSON only, anything else is 406.
- `FhirReader` is the authenticated caller allowed to read the type in the path.
- `stored_resource` puts a stored resource in an answer with its version `meta`, spliced
  into the stored JSON text; `AnswerValue` is an answer body that may hold such text.

Scopes. A read needs, for the resource type in the path, one of the SMART system scopes
`system/*.rs`, `system/<Type>.rs` (or any SMART v2 permission string holding `r`, e.g.
`system/<Type>.r`, `system/*.cruds`), `system/*.read`, `system/<Type>.read`,
`system/*.*`; or the clinic scope `clinic/fhir.read`, matched like every clinic scope
(`clinic/*.read`, `clinic/fhir.*`, `clinic/*.*` grant it too). The keys file accepts both
kinds.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias

import orjson
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from adapter.api.auth.callers import FHIR_READ, Caller, authenticated_caller
from adapter.api.fhir.resource_types import SERVED_TYPES as SERVED_TYPES  # re-exported
from adapter.errors import AdapterError, InsufficientScope, NotAcceptable
from mappings.common.serialize import dumps
from mappings.jsontypes import JsonObject, JsonScalar

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
CLINIC_FHIR_READ = FHIR_READ
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


# An answer's body: JSON in which stored resources may sit as already serialised text.
AnswerValue: TypeAlias = (
    JsonScalar | orjson.Fragment | Sequence["AnswerValue"] | Mapping[str, "AnswerValue"]
)
# How the store writes every resource (`mappings.common.serialize.dumps` of a mapped resource):
# type, id and `meta` first; see `stored_resource`.
_STORED_HEAD = re.compile(
    r'\{"resourceType":"[A-Za-z]{1,64}","id":"[A-Za-z0-9\-.]{1,64}","meta":\{'
)
_SMART_SCOPE = re.compile(r"system/(?P<type>\*|[A-Z][A-Za-z]*)\.(?P<access>read|\*|c?r?u?d?s?)")
_JSON_FORMATS = {
    "json": FHIR_JSON,
    FHIR_JSON: FHIR_JSON,
    "application/json+fhir": FHIR_JSON,
    PLAIN_JSON: PLAIN_JSON,
}
_ACCEPT_RANGES = _JSON_FORMATS | {"*/*": FHIR_JSON, "application/*": FHIR_JSON}

# The OperationOutcome issue code for each status this API answers with.
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    410: "deleted",
    415: "not-supported",
    422: "too-costly",
    429: "throttled",
    503: "transient",
}


def operation_outcome(status: int, diagnostics: str) -> JsonObject:
    code = _ISSUE_CODES.get(status, "exception" if status >= 500 else "processing")
    issue: JsonObject = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(
    body: Mapping[str, AnswerValue],
    status: int = 200,
    media: str = FHIR_JSON,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=media)


def outcome_response(
    status: int, diagnostics: str, headers: dict[str, str] | None = None
) -> Response:
    return fhir_response(operation_outcome(status, diagnostics), status, headers=headers)


class FhirRoute(APIRoute):
    """A route whose every error, dependencies' included, answers as an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AdapterError as exc:
                # AdapterError messages never hold clinical content (see adapter.errors).
                return outcome_response(exc.status_code, str(exc), exc.headers())
            except HTTPException as exc:
                return outcome_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))
            except RequestValidationError:
                return outcome_response(400, "the request is not valid")

        return fhir_handler


def media_type(request: Request) -> str:
    """The media type to answer with: `_format` first, then `Accept`; 406 unless JSON."""
    wanted = request.query_params.get("_format")
    if wanted is not None:
        # An unencoded `+` in a query string reads as a space.
        found = _JSON_FORMATS.get(wanted.strip().replace(" ", "+").lower())
        if found is None:
            raise NotAcceptable("only JSON is supported (_format=json)")
        return found
    accept = request.headers.get("accept")
    if not accept or not accept.strip():
        return FHIR_JSON
    best: tuple[float, str] | None = None
    for media_range in accept.split(","):
        name, *params = (part.strip().lower() for part in media_range.split(";"))
        found = _ACCEPT_RANGES.get(name)
        quality = _quality(params)
        if found is not None and quality > 0 and (best is None or quality > best[0]):
            best = (quality, found)
    if best is None:
        raise NotAcceptable("only JSON is supported (Accept: application/fhir+json)")
    return best[1]


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def may_read(caller: Caller, resource_type: str) -> bool:
    """Whether `caller` holds a scope allowing reads of `resource_type` (see module doc)."""
    for scope in caller.scopes:
        match = _SMART_SCOPE.fullmatch(scope)
        if match is None or match["type"] not in ("*", resource_type):
            continue
        access = match["access"]
        if access in ("read", "*") or "r" in access:
            return True
    return caller.has_scope(CLINIC_FHIR_READ)


async def fhir_reader(request: Request) -> Caller:
    """The authenticated caller, allowed to read the type in the path (401/403 otherwise)."""
    caller = authenticated_caller(request, "FHIR API")
    resource_type = str(request.path_params.get("resource_type", "*"))
    if not may_read(caller, resource_type):
        log.info("FHIR API: key %s may not read this type", caller.key_id)
        wanted = f"system/{resource_type}.rs" if resource_type in SERVED_TYPES else "system/*.rs"
        raise InsufficientScope(wanted)
    return caller


FhirReader = Annotated[Caller, Depends(fhir_reader)]


def instant(moment: datetime) -> str:
    """A FHIR `instant` (UTC, `Z`); the store's naive datetimes (SQLite) are UTC."""
    return as_utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def with_meta(content: str, number: int, at: datetime) -> JsonObject:
    """Stored content with `meta.versionId` and `meta.lastUpdated` from the store."""
    resource: dict[str, Any] = json.loads(content)
    stored_meta = resource.get("meta")
    extra = stored_meta if isinstance(stored_meta, dict) else {}
    resource["meta"] = {"versionId": str(number), "lastUpdated": instant(at)} | {
        key: value for key, value in extra.items() if key not in ("versionId", "lastUpdated")
    }
    return resource


def stored_resource(content: str, number: int, at: datetime) -> str:
    """`with_meta(content, number, at)` as JSON text (for content as the store writes it,
    the very same bytes), made by splicing `versionId` and `lastUpdated` into the stored
    text instead of parsing and re-serialising it all (most of the cost of a read, and of
    a search per resource).

    Only content that starts the way the store writes it (a top-level `meta` object third)
    and holds no `versionId`/`lastUpdated` key anywhere is spliced; anything else takes the
    parsing way, so the answer is always the same valid FHIR JSON.
    """
    head = _STORED_HEAD.match(content)
    if head is None or '"versionId"' in content or '"lastUpdated"' in content:
        return dumps(with_meta(content, number, at)).decode()
    end = head.end()
    separator = "" if content.startswith("}", end) else ","
    meta = f'"versionId":"{number}","lastUpdated":"{instant(at)}"{separator}'
    return f"{content[:end]}{meta}{content[end:]}"


def stored_fragment(content: str, number: int, at: datetime) -> orjson.Fragment:
    """`stored_resource` as a value to put in an answer's body as it is."""
    return orjson.Fragment(stored_resource(content, number, at))
