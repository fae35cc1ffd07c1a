"""`/fhir`: a read-only FHIR R4 view of the store, per tenant, JSON only.

    GET /fhir/metadata                          CapabilityStatement (no key needed)
    GET /fhir/{type}/{id}                       current version; ETag, Last-Modified, 304, 410
    GET /fhir/{type}/{id}/_history/{vid}        that version; 410 if it is a deletion
    GET /fhir/{type}/{id}/_history              Bundle type `history`, newest first

A resource of another tenant answers exactly like one that does not exist (404). Errors are
OperationOutcomes (see `adapter.api.fhir.common`). Logs name the key, the type and the
status only: never an id (a logical id is derived from clinic identifiers) or content.
"""

from __future__ import annotations

import logging
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.api.auth.callers import Caller
from adapter.api.fhir.capability import capability_statement
from adapter.api.fhir.common import (
    ID_PATTERN,
    SERVED_TYPES,
    AnswerValue,
    FhirRoute,
    as_utc,
    fhir_response,
    instant,
    media_type,
    stored_fragment,
    stored_resource,
)
from adapter.api.fhir.route_context import Reading, ReadingDep, off_loop, read_by_key
from adapter.api.middleware.audit import answer_count, hand_over_count
from adapter.errors import (
    Gone,
    MethodNotAllowed,
    NotFound,
    RequestRefused,
    StoreUnavailable,
    TooCostly,
)
from adapter.store.budget import bounded_read
from adapter.store.engine import StoreError
from adapter.store.key_reads import KeyReads
from adapter.store.resources import Version, versions
from mappings.jsontypes import JsonValue

log = logging.getLogger(__name__)
router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)

# Version ids are positive integers; anything longer cannot be one of ours.
MAX_VERSION_DIGITS = 9


@router.get("/metadata")
def metadata(request: Request) -> Response:
    media = media_type(request)
    token_url = str(request.url_for("smart_token")) if request.app.state.smart_clients else None
    return fhir_response(capability_statement(_base_url(request), token_url), media=media)


@router.get("/{resource_type}/{logical_id}", name="fhir_read")
async def read(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    caller, engine = reading.caller, reading.engine
    media = _checked(request, resource_type, logical_id)
    key_reads: KeyReads | None = request.app.state.key_reads
    if key_reads is not None:
        found = await key_reads.current(caller.tenant, resource_type, logical_id)
    else:
        lookup = partial(_load, reading, resource_type, logical_id, None)
        found = await read_by_key(engine, lookup, reading.threads)
    if not found:
        raise _not_found(caller.key_id, resource_type)
    gone = f"this {resource_type} was deleted"
    return _answer(request, caller, found[0], media, gone, f"a {resource_type}")


@router.get("/{resource_type}/{logical_id}/_history/{version_id}")
async def vread(
    resource_type: str,
    logical_id: str,
    version_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    caller, engine = reading.caller, reading.engine
    media = _checked(request, resource_type, logical_id)
    if not ID_PATTERN.fullmatch(version_id):
        raise RequestRefused("the version id is not a valid FHIR id")
    number = _version_number(version_id)
    lookup = partial(_load, reading, resource_type, logical_id, number)
    found = await read_by_key(engine, lookup, reading.threads)
    if not found:
        raise _not_found(caller.key_id, resource_type)
    gone = f"version {number} of this {resource_type} is a deletion"
    return _answer(request, caller, found[0], media, gone, f"a version of a {resource_type}")


def _answer(
    request: Request, caller: Caller, version: Version, media: str, gone: str, what: str
) -> Response:
    """One stored version as a read answer: 410 if it is a deletion, 304 if the caller
    already has it, else the resource with its ETag and Last-Modified."""
    if version.deleted:
        log.info("FHIR API: key %s read a deleted version (%s)", caller.key_id, what)
        raise Gone(gone)
    headers = _validators(version)
    if _not_modified(request, version):
        return Response(status_code=304, headers=headers)
    log.info("FHIR API: key %s read %s", caller.key_id, what)
    hand_over_count(request, 1)
    body = stored_resource(version.content, version.number, version.at)
    return Response(body, headers=headers, media_type=media)


@router.get("/{resource_type}/{logical_id}/_history")
async def history(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    work = partial(_history, resource_type, logical_id, request, reading)
    return await off_loop(work, reading.threads)


def _history(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller = reading.caller
    media = _checked(request, resource_type, logical_id)
    versions = _load(reading, resource_type, logical_id, None, every=True)
    if not versions:
        raise _not_found(caller.key_id, resource_type)
    full_url = str(request.url_for("fhir_read", resource_type=resource_type, logical_id=logical_id))
    reference = f"{resource_type}/{logical_id}"
    previous = {v.number: v for v in versions}
    entries: list[AnswerValue] = []
    for version in versions:  # newest first
        before = previous.get(version.number - 1)
        entries.append(_history_entry(version, before, full_url, reference))
    log.info(
        "FHIR API: key %s read the history of a %s (%d versions)",
        caller.key_id,
        resource_type,
        len(versions),
    )
    bundle: dict[str, AnswerValue] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(versions[0].at)},
        "type": "history",
        "total": len(versions),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": entries,
    }
    hand_over_count(request, answer_count(bundle))
    return fhir_response(bundle, media=media)


# Included after every other `/fhir` router (see adapter.api.routes), so it only gets the rest.
fallback = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)


# Not in the OpenAPI document: one route for seven methods would repeat its operation id.
@fallback.api_route(
    "/{rest:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
def elsewhere(rest: str, request: Request) -> Response:
    """Whatever the routes above do not serve: 405 for a write, 404 for any other read."""
    if request.method != "GET":
        raise MethodNotAllowed("this FHIR API is read-only")
    raise NotFound("no such FHIR endpoint here (see /fhir/metadata for what is served)")


def _checked(request: Request, resource_type: str, logical_id: str) -> str:
    """The answer's media type, once the path's type and id are known to be servable."""
    if resource_type not in SERVED_TYPES:
        raise NotFound("this server holds no resources of that type")
    if not ID_PATTERN.fullmatch(logical_id):
        raise RequestRefused("the id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})")
    return media_type(request)


def _version_number(version_id: str) -> int:
    if not (version_id.isdigit() and len(version_id) <= MAX_VERSION_DIGITS):
        return 0  # a valid id, but never one of our version numbers: 404
    return int(version_id)


def _not_found(key_id: str, resource_type: str) -> NotFound:
    log.info("FHIR API: key %s asked for an unknown %s", key_id, resource_type)
    return NotFound(f"no such {resource_type}")


def _load(
    reading: Reading,
    resource_type: str,
    logical_id: str,
    number: int | None,
    *,
    every: bool = False,
) -> list[Version]:
    """The resource's versions, newest first: all (`every`), `number`, or the current one.

    Read with the store's time budget like a search. Looked up by key, a read cannot ask
    too much: past the budget the store is overloaded, not the request at fault (503)."""
    budget = reading.limits.statement_timeout_ms
    try:
        with bounded_read(reading.engine, budget) as conn:
            return versions(conn, reading.caller.tenant, resource_type, logical_id, number, every)
    except (StoreError, TooCostly) as exc:
        log.warning("FHIR API: store error %s reading a resource", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc


def _validators(version: Version) -> dict[str, str]:
    return {
        "ETag": f'W/"{version.number}"',
        "Last-Modified": format_datetime(as_utc(version.at), usegmt=True),
    }


def _not_modified(request: Request, version: Version) -> bool:
    """`If-None-Match` (weak comparison), else `If-Modified-Since`, says the caller has it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # Bare version ids are taken too: some clients (fhirpy's refresh) send `1`, not `W/"1"`.
        tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
        return "*" in tags or str(version.number) in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return as_utc(version.at).replace(microsecond=0) <= since


def _history_entry(
    version: Version, before: Version | None, full_url: str, reference: str
) -> AnswerValue:
    response: dict[str, JsonValue] = {
        "etag": f'W/"{version.number}"',
        "lastModified": instant(version.at),
    }
    if version.deleted:
        return {
            "fullUrl": full_url,
            "request": {"method": "DELETE", "url": reference},
            "response": {"status": "204 No Content", **response},
        }
    created = version.number == 1 or (before is not None and before.deleted)
    return {
        "fullUrl": full_url,
        "resource": stored_fragment(version.content, version.number, version.at),
        "request": {"method": "PUT", "url": reference},
        "response": {"status": "201 Created" if created else "200 OK", **response},
    }


def _base_url(request: Request) -> str:
    return str(request.url_for("metadata")).removesuffix("/metadata")
