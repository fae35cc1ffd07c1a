"""`/fhir/Subscription`: topic-based Subscriptions (R4 Backport IG), per tenant.

    GET    /fhir/Subscription/$topic-list        our topics' canonical URLs
    POST   /fhir/Subscription                    create (status requested; a handshake follows)
    GET    /fhir/Subscription[?status=]          the tenant's subscriptions (searchset)
    GET    /fhir/Subscription/{id}               read
    PUT    /fhir/Subscription/{id}               update (status requested starts it again)
    DELETE /fhir/Subscription/{id}               delete, with its undelivered notifications
    GET    /fhir/Subscription/{id}/$status       status (searchset of backport status Parameters)
    GET    /fhir/Subscription/{id}/$events       past events by number, to fill a gap (410
                                                 for numbers the retention deleted)

Scopes name the type: `system/Subscription.*` (or SMART letters: `c` create, `r` read and
`$status`, `u` update, `d` delete, `s` search, `$events` and `$topic-list`;
`.read`/`.write`). A wildcard type (`system/*.rs`) does not reach subscriptions: they carry
receivers' credentials. Even so, the credential (`channel.header` values) is shown only to a
caller who may update subscriptions (`u`, `.write`, `.*`): others read `Name: ***`, and an
update sending `Name: ***` back keeps the value held. A subscription, and every event it
sees, is of the caller's tenant only; another tenant's id answers 404.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.api.auth.callers import Caller, authenticated_caller
from adapter.api.deps import migrated_store
from adapter.api.fhir.bundle import base_url
from adapter.api.fhir.common import ID_PATTERN, FhirRoute, fhir_response, media_type
from adapter.api.fhir.subscription_resource import (
    as_resource,
    keep_masked,
    parse,
    refuse_masked,
)
from adapter.api.openapi.subscription_operations import SUBSCRIPTION_BODY
from adapter.config import Settings
from adapter.errors import (
    Gone,
    InsufficientScope,
    NotFound,
    RequestRefused,
    StoreUnavailable,
)
from adapter.notify.bundles import (
    EMPTY,
    FULL_RESOURCE,
    ID_ONLY,
    QUERY_EVENT,
    notification,
    status_bundle,
)
from adapter.notify.guard import allowed_hosts, check_endpoint
from adapter.store import subscription_queue as queue
from adapter.store import subscriptions as store
from adapter.store.engine import Engine, StoreError, write_transaction
from adapter.store.subscription_topics import TOPICS
from adapter.store.subscription_upkeep import first_held_event
from mappings.jsontypes import JsonObject, JsonValue

log = logging.getLogger(__name__)
router = APIRouter(prefix="/fhir/Subscription", tags=["fhir"], route_class=FhirRoute)
_SCOPE = re.compile(r"system/Subscription\.(?P<access>read|write|\*|c?r?u?d?s?)")
MAX_EVENTS_PER_QUERY = 1000
T = TypeVar("T")


def may(caller: Caller, letter: str) -> bool:
    """Whether `caller` holds a `system/Subscription.*` scope granting `letter` (cruds)."""
    for scope in caller.scopes:
        match = _SCOPE.fullmatch(scope)
        if match is None:
            continue
        access = match["access"]
        if access == "read":
            granted = "rs"
        elif access == "write":
            granted = "cud"
        else:
            granted = "cruds" if access == "*" else access
        if letter in granted:
            return True
    return False


async def _caller(request: Request, letter: str) -> Caller:
    caller = authenticated_caller(request, "FHIR API")
    if not may(caller, letter):
        log.info("FHIR API: key %s lacks a Subscription scope", caller.key_id)
        raise InsufficientScope(f"system/Subscription.{letter}")
    await migrated_store(request)
    return caller


async def _in_store(work: Callable[[], T]) -> T:
    try:
        return await anyio.to_thread.run_sync(work)
    except StoreError as exc:
        raise StoreUnavailable("the store is unavailable; retry shortly") from exc


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _clock(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


def _checker(request: Request) -> Callable[[str], None]:
    settings: Settings = request.app.state.settings
    allowed = allowed_hosts(settings.subscription_allowed_hosts)
    return lambda url: check_endpoint(url, allowed)


@router.get("/$topic-list")
async def topic_list(request: Request) -> Response:
    await _caller(request, "s")
    parameters: list[JsonValue] = [
        {"name": "subscription-topic-canonical", "valueCanonical": topic.url} for topic in TOPICS
    ]
    return fhir_response(
        {"resourceType": "Parameters", "parameter": parameters}, media=media_type(request)
    )


@router.post("", openapi_extra=SUBSCRIPTION_BODY)
async def create(request: Request) -> Response:
    caller = await _caller(request, "c")
    media, body, check = media_type(request), _json(await request.body()), _checker(request)
    engine, now, base = _engine(request), _clock(request), base_url(request)

    def work() -> store.Stored:
        spec = parse(body, check)
        refuse_masked(spec)
        with write_transaction(engine) as conn:
            return store.create(conn, caller.tenant, spec, base, now)

    made = await _in_store(work)
    log.info("FHIR API: key %s created a subscription", caller.key_id)
    location = f"{base}/Subscription/{made.public_id}/_history/{made.version}"
    return _answer(made, caller, media, 201, {"Location": location})


@router.get("")
async def search(request: Request, status: str | None = None) -> Response:
    caller = await _caller(request, "s")
    if status is not None and status not in store.STATUSES:
        raise RequestRefused("status must be requested, active, error or off")
    media, engine, base = media_type(request), _engine(request), base_url(request)

    def work() -> list[store.Stored]:
        with engine.connect() as conn:
            return store.listed(conn, caller.tenant, status)

    found = await _in_store(work)
    reveals = may(caller, "u")
    entries: list[JsonValue] = [
        {
            "fullUrl": f"{base}/Subscription/{sub.public_id}",
            "resource": as_resource(sub, reveal_headers=reveals),
            "search": {"mode": "match"},
        }
        for sub in found
    ]
    bundle: JsonObject = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }
    return fhir_response(bundle, media=media)


@router.get("/{logical_id}/$status")
async def status(logical_id: str, request: Request) -> Response:
    caller = await _caller(request, "r")
    sub = await _one(request, caller, logical_id)
    return fhir_response(
        status_bundle(base_url(request), [sub], _clock(request)), media=media_type(request)
    )


@router.get("/{logical_id}/$events")
async def events(
    logical_id: str,
    request: Request,
    eventsSinceNumber: int | None = None,  # noqa: N803 - the operation's parameter names
    eventsUntilNumber: int | None = None,  # noqa: N803
    content: str | None = None,
) -> Response:
    caller = await _caller(request, "s")
    if content not in (None, EMPTY, ID_ONLY, FULL_RESOURCE):
        raise RequestRefused("content must be empty, id-only or full-resource")
    sub = await _one(request, caller, logical_id)
    engine, now = _engine(request), _clock(request)
    since = max(1, eventsSinceNumber or 1)
    settings: Settings = request.app.state.settings

    def work() -> tuple[list[queue.Note], dict[int, str | None]]:
        with engine.connect() as conn:
            first = first_held_event(conn, sub.pk, sub.events_count)
            if eventsSinceNumber is not None and since < first:
                raise _pruned(since, first, settings.subscription_retention_days)
            found = queue.events(conn, sub.pk, since, eventsUntilNumber, MAX_EVENTS_PER_QUERY)
            return found, queue.focus_contents(conn, sub.tenant, found)

    found, contents = await _in_store(work)
    bundle = notification(sub.fhir_base, sub, QUERY_EVENT, found, contents, now, content)
    return fhir_response(bundle, media=media_type(request))


@router.get("/{logical_id}")
async def read(logical_id: str, request: Request) -> Response:
    caller = await _caller(request, "r")
    return _answer(await _one(request, caller, logical_id), caller, media_type(request))


@router.put("/{logical_id}", openapi_extra=SUBSCRIPTION_BODY)
async def update(logical_id: str, request: Request) -> Response:
    caller = await _caller(request, "u")
    media, body, check = media_type(request), _json(await request.body()), _checker(request)
    if isinstance(body, dict) and body.get("id") not in (None, logical_id):
        raise RequestRefused("Subscription.id must be the id in the URL")
    engine, now = _engine(request), _clock(request)

    def work() -> store.Stored:
        spec = parse(body, check)
        with write_transaction(engine) as conn:
            current = store.read(conn, caller.tenant, logical_id)
            if current is None:
                raise NotFound("no such Subscription (ids are given by this server: POST)")
            return store.replace(conn, current, keep_masked(spec, current), now)

    return _answer(await _in_store(work), caller, media)


@router.delete("/{logical_id}")
async def delete(logical_id: str, request: Request) -> Response:
    caller = await _caller(request, "d")
    engine = _engine(request)

    def work() -> bool:
        with write_transaction(engine) as conn:
            return store.remove(conn, caller.tenant, logical_id)

    if not ID_PATTERN.fullmatch(logical_id) or not await _in_store(work):
        raise NotFound("no such Subscription")
    log.info("FHIR API: key %s deleted a subscription", caller.key_id)
    return Response(status_code=204)


async def _one(request: Request, caller: Caller, logical_id: str) -> store.Stored:
    engine = _engine(request)

    def work() -> store.Stored | None:
        with engine.connect() as conn:
            return store.read(conn, caller.tenant, logical_id)

    found = await _in_store(work) if ID_PATTERN.fullmatch(logical_id) else None
    if found is None:
        raise NotFound("no such Subscription")
    return found


def _pruned(since: int, first: int, days: int) -> Gone:
    """Events asked for that the retention deleted: said, never answered as "none"."""
    return Gone(
        f"events {since} to {first - 1} of this subscription are no longer held (sent "
        f"notifications are kept {days} days, ADAPTER_SUBSCRIPTION_RETENTION_DAYS); the "
        f"first held is {first}: ask eventsSinceNumber={first}, and find earlier changes by "
        "searching the resources"
    )


def _json(body: bytes) -> JsonValue:
    try:
        parsed: JsonValue = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused("the body is not JSON") from exc
    return parsed


def _answer(
    sub: store.Stored,
    caller: Caller,
    media: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    sent = {"ETag": f'W/"{sub.version}"'} | (headers or {})
    resource = as_resource(sub, reveal_headers=may(caller, "u"))
    return fhir_response(resource, status_code, media, sent)
