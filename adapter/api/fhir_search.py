"""`/fhir` search, type history and `$everything`, per tenant, paged by signed tokens.

    GET /fhir/{type}?...                       searchset Bundle (see adapter.api.fhir_params)
    GET /fhir/{type}/_history                  history Bundle of every version, newest first
    GET /fhir/Patient/{id}/$everything         the patient's resources and what they cite
    GET /fhir/Encounter/{id}/$everything       the encounter's resources and what they cite

Every page carries `self`, and `next`/`previous` links when there is more; the `_cursor`
in them is a signed token (adapter.api.fhir_paging) holding no tenant. Resources the
caller may not read (by type, under its scopes) are left out of includes and
`$everything`. Logs name the key, the type and counts, never ids or values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from adapter.api.audit import answer_count, hand_over_count
from adapter.api.auth import Caller
from adapter.api.fhir_bundle import (
    Paged,
    PageRequest,
    base_url,
    entry,
    page_links,
    searchset,
    self_url,
    token_key,
)
from adapter.api.fhir_common import (
    ID_PATTERN,
    SERVED_TYPES,
    AnswerValue,
    FhirRoute,
    fhir_response,
    may_read,
    media_type,
    operation_outcome,
)
from adapter.api.fhir_history import history_bundle
from adapter.api.fhir_limits import (
    SearchLimits,
    check_included,
    check_query_length,
    check_search,
    is_heavy,
)
from adapter.api.fhir_params import parse_count, parse_date, parse_search, shown
from adapter.api.fhir_reading import Reading, ReadingDep, off_loop
from adapter.errors import NotFound, RequestRefused, StoreUnavailable
from adapter.store import compartment, search
from adapter.store.budget import bounded_read
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
EVERYTHING_TYPES = ("Patient", "Encounter")


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


def _search_type(
    resource_type: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller, engine, clock, tokens = reading.caller, reading.engine, reading.clock, reading.tokens
    media = _served(request, resource_type)
    pairs = list(request.query_params.multi_items())
    query = parse_search(resource_type, pairs, strict=is_strict(request))
    paging = PageRequest.of(request, tokens)
    with _reading(engine, reading.limits) as conn:
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
            entries = [entry(base, found, "match") for found in paged.rows]
            entries += [entry(base, found, "include") for found in extra]
    if query.unknown:
        entries.append(_unknown_outcome(query.unknown))
    log.info(
        "FHIR API: key %s searched %s (%d matches, %d ignored parameters)",
        caller.key_id,
        resource_type,
        matched,
        len(query.unknown),
    )
    return _answer(request, searchset(matched, links, entries, snapshot.at), media)


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


@router.get("/{resource_type}/{logical_id}/$everything", name="fhir_everything")
async def everything(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    work = partial(_everything, resource_type, logical_id, request, reading)
    return await off_loop(work, reading.threads)


def _everything(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller, engine, clock, tokens = reading.caller, reading.engine, reading.clock, reading.tokens
    media = _served(request, resource_type)
    if resource_type not in EVERYTHING_TYPES:
        raise NotFound("$everything is served for Patient and Encounter only")
    if not ID_PATTERN.fullmatch(logical_id):
        raise RequestRefused("the id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})")
    check_query_length(request.url.query, reading.limits)
    since, count = _since_and_count(request, ("_since", "_count"))
    paging = PageRequest.of(request, tokens)
    with _reading(engine, reading.limits) as conn:
        focal = search.by_reference(conn, caller.tenant, [f"{resource_type}/{logical_id}"])
        if not focal:
            raise NotFound(f"no such {resource_type}")
        snapshot = paging.snapshot() or take_snapshot(conn, clock())
        pks = compartment.everything(conn, caller.tenant, focal[0], snapshot, since)
        found = compartment.rows(conn, pks)
    readable = [f for f in found if may_read(caller, f.resource_type)]
    paged = Paged.of(_from_cursor(readable, paging, count), count, paging.cursor)
    links = page_links(request, tokens, paged, lambda f: (f.pk, f.pk), (paging.digest, snapshot))
    base = base_url(request)
    entries: list[AnswerValue] = [entry(base, f, "match") for f in paged.rows]
    log.info(
        "FHIR API: key %s read the $everything of a %s (%d resources)",
        caller.key_id,
        resource_type,
        len(readable),
    )
    return _answer(request, searchset(len(readable), links, entries, snapshot.at), media)


def _from_cursor(rows: list[Found], paging: PageRequest, count: int) -> list[Found]:
    """The rows a keyed page reads from `rows` (by primary key): up to `count + 1`."""
    cursor = paging.cursor
    if cursor is None:
        return rows[: count + 1]
    if cursor.forward:
        return [f for f in rows if f.pk > cursor.pk][: count + 1]
    before = [f for f in rows if f.pk < cursor.pk]
    return before[-(count + 1) :]


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
    media = _served(request, resource_type)
    check_query_length(request.url.query, reading.limits)
    since, count = _since_and_count(request, ("_since", "_count"))
    paging = PageRequest.of(request, tokens)
    with _reading(engine, reading.limits) as conn:
        snapshot = paging.snapshot() or take_snapshot(conn, clock())
        bundle = history_bundle(
            conn, request, tokens, (caller.tenant, resource_type), (snapshot, since, count), paging
        )
    log.info("FHIR API: key %s read the history of type %s", caller.key_id, resource_type)
    return _answer(request, bundle, media)


def _answer(request: Request, bundle: dict[str, AnswerValue], media: str) -> Response:
    """The Bundle as the answer, its entry count handed to the audit trail (no re-parse)."""
    hand_over_count(request, answer_count(bundle))
    return fhir_response(bundle, media=media)


def _served(request: Request, resource_type: str) -> str:
    if resource_type not in SERVED_TYPES:
        raise NotFound("this server holds no resources of that type")
    return media_type(request)


def _since_and_count(request: Request, known: tuple[str, ...]) -> tuple[datetime | None, int]:
    """`_since` and `_count` of a history or `$everything` request; others are refused
    under `Prefer: handling=strict` and ignored otherwise."""
    params = request.query_params
    if is_strict(request):
        for name in params:
            if name not in (*known, "_cursor", "_format"):
                raise RequestRefused(f"unknown parameter {shown(name)}")
    since_text = params.get("_since")
    since = None if since_text is None else parse_date("_since", since_text).lo
    count_text = params.get("_count")
    return since, DEFAULT_COUNT if count_text is None else max(parse_count(count_text), 1)


def is_strict(request: Request) -> bool:
    """`Prefer: handling=strict`: refuse unknown parameters instead of ignoring them."""
    prefer = request.headers.get("prefer", "")
    wishes = {part.strip().replace(" ", "") for part in prefer.replace(";", ",").split(",")}
    return "handling=strict" in wishes


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
    return {"resource": outcome, "search": {"mode": "outcome"}}


@contextmanager
def _reading(engine: Engine, limits: SearchLimits) -> Iterator[Connection]:
    """A connection whose statements have the time budget; a failure of the store (never
    of the request: adapter.store.budget tells them apart) is 503."""
    try:
        with bounded_read(engine, limits.statement_timeout_ms) as conn:
            yield conn
    except SQLAlchemyError as exc:
        log.warning("FHIR API: store error %s while searching", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc
