"""`/fhir` search and type history, per tenant, paged by signed tokens.

    GET  /fhir/{type}?...           searchset Bundle (see adapter.api.fhir.params)
    POST /fhir/{type}/_search       the same search, its parameters form-encoded in the body
                                    (and the query string): the same answer as the GET
    GET  /fhir/{type}/_history      history Bundle of every version, newest first

Every page carries `self`, and `next`/`previous` links when there is more; the `_cursor`
in them is a signed token (adapter.api.fhir.paging) holding no tenant. A POST search's
links are those of the same search by GET. Resources the caller may not read (by type,
under its scopes) are left out of includes. Logs name the key, the type and counts, never
ids or values.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.api.auth.callers import Caller
from adapter.api.fhir.bundle import (
    Paged,
    PageRequest,
    base_url,
    entry,
    page_links,
    searchset,
    self_url,
    token_key,
)
from adapter.api.fhir.common import (
    SERVED_TYPES,
    AnswerValue,
    FhirRoute,
    fhir_response,
    may_read,
    media_type,
    operation_outcome,
)
from adapter.api.fhir.history import history_bundle
from adapter.api.fhir.limits import (
    SearchLimits,
    check_included,
    check_query_length,
    check_search,
    is_heavy,
)
from adapter.api.fhir.params import parse_count, parse_date, parse_search, shown
from adapter.api.fhir.route_context import Reading, ReadingDep, off_loop
from adapter.api.fhir.summary import summarised_entry
from adapter.api.middleware.audit import answer_count, hand_over_count
from adapter.api.openapi.answers import SEARCH_FORM
from adapter.errors import NotFound, RequestRefused, StoreUnavailable, UnsupportedMediaType
from adapter.store import compartment, search
from adapter.store.budget import bounded_read
from adapter.store.engine import Connection, Engine, StoreError
from adapter.store.search import (
    DEFAULT_COUNT,
    Found,
    Position,
    SearchQuery,
    Snapshot,
    take_snapshot,
)
from mappings.jsontypes import JsonValue

log = logging.getLogger(__name__)
# `early` goes before the read routes (`/{type}/_history` would read as `/{type}/{id}`),
# `router` after them (`/{type}` would take `/metadata`); see adapter.api.app.
early = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)
router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)
FORM = "application/x-www-form-urlencoded"


@router.get("/{resource_type}", name="fhir_search")
async def search_type(
    resource_type: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    # Refused on the loop: a search past the limits never waits for a read thread.
    pairs = request.query_params.multi_items()
    check_search(request.url.query, pairs, reading.limits)
    threads = reading.heavy_threads if is_heavy(pairs) else reading.threads
    return await off_loop(partial(_search_type, resource_type, request, reading), threads)


@router.post("/{resource_type}/_search", name="fhir_search_post", openapi_extra=SEARCH_FORM)
async def search_type_by_post(
    resource_type: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    pairs = list(request.query_params.multi_items()) + await form_pairs(request)
    same = as_get(request, f"/fhir/{resource_type}", pairs)
    return await off_loop(partial(_search_type, resource_type, same, reading), reading.threads)


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """The parameters of a form-encoded body (415 for any other body)."""
    body = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM and (body or media):
        raise UnsupportedMediaType(f"the search parameters are sent as {FORM}")
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise RequestRefused("the form is not UTF-8") from exc


def as_get(request: Request, path: str, pairs: list[tuple[str, str]]) -> Request:
    """`request` as the GET of `path` with `pairs` as its query string: what a POST search
    or operation answers (and links to) is that GET's."""
    _ = request.state  # made now, so the GET shares it (the audit trail reads it)
    scope = dict(request.scope)
    query = urlencode(pairs).encode()
    scope.update(method="GET", path=path, raw_path=path.encode(), query_string=query)
    return Request(scope, request.receive)


def _search_type(
    resource_type: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller, engine, clock, tokens = reading.caller, reading.engine, reading.clock, reading.tokens
    media = served(request, resource_type)
    pairs = list(request.query_params.multi_items())
    check_search(request.url.query, pairs, reading.limits)
    query = parse_search(resource_type, pairs, strict=not is_lenient(request))
    paging = PageRequest.of(request, tokens)
    with reading_store(engine, reading.limits) as conn:
        snapshot = paging.snapshot() or take_snapshot(conn, clock())
        entries: list[AnswerValue] = []
        ignored = set(query.unknown)
        links: list[JsonValue] = [{"relation": "self", "url": self_url(request, ignored)}]
        if query.only_count:
            matched = search.total(conn, caller.tenant, query, snapshot)
        else:
            paged, extra = _search_page(conn, caller, query, snapshot, paging, reading.limits)
            matched = _matched(conn, caller.tenant, query, snapshot, paged)
            links = page_links(
                request, tokens, paged, _search_key(query), (paging.digest, snapshot), ignored
            )
            base = base_url(request)
            entries = [_entry(base, found, "match", query) for found in paged.rows]
            entries += [_entry(base, found, "include", query) for found in extra]
    if query.unknown:
        entries.append(_unknown_outcome(query.unknown))
    log.info(
        "FHIR API: key %s searched %s (%d matches, %d ignored parameters)",
        caller.key_id,
        resource_type,
        matched,
        len(query.unknown),
    )
    return answer(request, searchset(matched, links, entries, snapshot.at), media)


def _entry(base: str, found: Found, mode: str, query: SearchQuery) -> AnswerValue:
    if query.summary is None and not query.elements:
        return entry(base, found, mode)
    return summarised_entry(base, found, mode, (query.summary, query.elements))


def _matched(
    conn: Connection, tenant: str, query: SearchQuery, snapshot: Snapshot, paged: Paged[Found]
) -> int:
    """The search's total: a first page with nothing after it holds every match, so it is
    counted in hand; any other page asks the store (a second query as costly as the page)."""
    if not paged.has_previous and not paged.has_next:
        return len(paged.rows)
    return search.total(conn, tenant, query, snapshot)


def _search_page(
    conn: Connection,
    caller: Caller,
    query: SearchQuery,
    snapshot: Snapshot,
    paging: PageRequest,
    limits: SearchLimits,
) -> tuple[Paged[Found], list[Found]]:
    cursor = paging.cursor
    position = None if cursor is None else Position(cursor.sort, cursor.pk, cursor.forward)
    rows = search.page(conn, caller.tenant, query, snapshot, position)
    paged = Paged.of(rows, query.count, cursor)
    most = limits.max_included
    extra = search.included(conn, caller.tenant, paged.rows, query.includes, most)
    check_included("_include", len(extra), limits)
    citing = search.revincluded(
        conn, caller.tenant, paged.rows, query.revincludes, most - len(extra)
    )
    check_included("_revinclude", len(extra) + len(citing), limits)
    extra += compartment.rows(conn, citing)
    matched = {found.pk for found in paged.rows}
    unique = {found.pk: found for found in extra if found.pk not in matched}
    return paged, [f for f in unique.values() if may_read(caller, f.resource_type)]


def _search_key(query: SearchQuery) -> Callable[[Found], tuple[object, int]]:
    if query.sort is None:
        return lambda found: (found.pk, found.pk)
    return lambda found: (token_key(found.sort_key), found.pk)


@early.get("/{resource_type}/_history", name="fhir_type_history")
async def type_history(
    resource_type: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    return await off_loop(partial(_type_history, resource_type, request, reading), reading.threads)


def _type_history(
    resource_type: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller, engine, clock, tokens = reading.caller, reading.engine, reading.clock, reading.tokens
    media = served(request, resource_type)
    check_query_length(request.url.query, reading.limits)
    since, count = since_and_count(request, ("_since", "_count"))
    paging = PageRequest.of(request, tokens)
    with reading_store(engine, reading.limits) as conn:
        snapshot = paging.snapshot() or take_snapshot(conn, clock())
        bundle = history_bundle(
            conn, request, tokens, (caller.tenant, resource_type), (snapshot, since, count), paging
        )
    log.info("FHIR API: key %s read the history of type %s", caller.key_id, resource_type)
    return answer(request, bundle, media)


def answer(request: Request, bundle: dict[str, AnswerValue], media: str) -> Response:
    """The Bundle as the answer, its entry count handed to the audit trail (no re-parse)."""
    hand_over_count(request, answer_count(bundle))
    return fhir_response(bundle, media=media)


def served(request: Request, resource_type: str) -> str:
    if resource_type not in SERVED_TYPES:
        raise NotFound("this server holds no resources of that type")
    return media_type(request)


def since_and_count(request: Request, known: tuple[str, ...]) -> tuple[datetime | None, int]:
    """`_since` and `_count` (0: the total only) of a history or `$everything` request;
    any parameter not `known` is refused, or ignored under `Prefer: handling=lenient`."""
    params = request.query_params
    if not is_lenient(request):
        for name in params:
            if name not in (*known, "_cursor", "_format"):
                raise RequestRefused(f"unknown parameter {shown(name)}")
    since_text = params.get("_since")
    since = None if since_text is None else parse_date("_since", since_text).lo
    count_text = params.get("_count")
    return since, DEFAULT_COUNT if count_text is None else parse_count(count_text)


def is_lenient(request: Request) -> bool:
    """`Prefer: handling=lenient`: ignore (and report) what is not supported instead of
    refusing it (strict, R4's other choice, is the default here)."""
    prefer = request.headers.get("prefer", "")
    wishes = {part.strip().replace(" ", "") for part in prefer.replace(";", ",").split(",")}
    return "handling=lenient" in wishes


def _unknown_outcome(names: list[str]) -> JsonValue:
    outcome = operation_outcome(400, "")
    outcome["issue"] = [
        {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": f"search parameter {shown(name)} is not supported here and was ignored",
        }
        for name in dict.fromkeys(names)
    ]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": outcome,
        "search": {"mode": "outcome"},
    }


@contextmanager
def reading_store(engine: Engine, limits: SearchLimits) -> Iterator[Connection]:
    """A connection whose statements have the time budget; a failure of the store (never
    of the request: adapter.store.budget tells them apart) is 503."""
    try:
        with bounded_read(engine, limits.statement_timeout_ms) as conn:
            yield conn
    except StoreError as exc:
        log.warning("FHIR API: store error %s while searching", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc
