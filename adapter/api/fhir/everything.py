"""`$everything` of a Patient or an Encounter, by GET or POST, and Patient compartments.

    GET|POST /fhir/Patient/{id}/$everything     the patient's resources and what they cite
    GET|POST /fhir/Encounter/{id}/$everything   the encounter's resources and what they cite
    GET      /fhir/Patient/{id}/{type}?...      the search of `type` in the patient's
                                                compartment (`patient=Patient/{id}`, ...)

`$everything` reads `_type` (the types to return), `start` and `end` (resources with a
clinical date keep only those whose date meets the period; undated ones stay), `_since`
and `_count` (0: the total only). A POST carries them as a `Parameters` body (R4: servers
SHALL take operations by POST); its answer, links included, is the GET's. Resources the
caller may not read (by type, under its scopes) are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapter.api.fhir.bundle import Paged, PageRequest, base_url, entry, page_links, searchset
from adapter.api.fhir.common import ID_PATTERN, SERVED_TYPES, AnswerValue, FhirRoute, may_read
from adapter.api.fhir.criteria import kind_of
from adapter.api.fhir.params import parse_date
from adapter.api.fhir.route_context import Reading, ReadingDep, off_loop
from adapter.api.fhir.search import (
    answer,
    as_get,
    reading_store,
    search_type,
    served,
    since_and_count,
)
from adapter.api.openapi.answers import PARAMETERS_BODY
from adapter.errors import NotFound, RequestRefused, UnsupportedMediaType
from adapter.store import compartment, search
from adapter.store.search import Found, take_snapshot

log = logging.getLogger(__name__)
# After the read routes (`/Patient/{id}/_history` is theirs), before the fallback.
router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)
EVERYTHING_TYPES = ("Patient", "Encounter")
EVERYTHING_PARAMETERS = ("_since", "_count", "_type", "start", "end")
# The parameter putting a type's resource in a patient's compartment (R4's
# CompartmentDefinition/patient, by the parameters this server has).
_IN_COMPARTMENT = {"Patient": "_id", "AdverseEvent": "subject", "Provenance": "patient"}


@router.get("/{resource_type}/{logical_id}/$everything", name="fhir_everything")
async def everything(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    work = partial(_everything, resource_type, logical_id, request, reading)
    return await off_loop(work, reading.threads)


@router.post(
    "/{resource_type}/{logical_id}/$everything",
    name="fhir_everything_post",
    openapi_extra=PARAMETERS_BODY,
)
async def everything_by_post(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    pairs = list(request.query_params.multi_items()) + await _parameters(request)
    same = as_get(request, f"/fhir/{resource_type}/{logical_id}/$everything", pairs)
    work = partial(_everything, resource_type, logical_id, same, reading)
    return await off_loop(work, reading.threads)


async def _parameters(request: Request) -> list[tuple[str, str]]:
    """A `Parameters` body's (name, value) pairs; no body: none."""
    body = await request.body()
    if not body.strip():
        return []
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/fhir+json", "application/json"):
        raise UnsupportedMediaType("an operation's body is a Parameters resource in JSON")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise RequestRefused("the body is not JSON") from exc
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise RequestRefused("an operation's body is a Parameters resource")
    return [_parameter(item) for item in document.get("parameter") or []]


def _parameter(item: Any) -> tuple[str, str]:
    name = item.get("name") if isinstance(item, dict) else None
    values = [v for k, v in item.items() if k.startswith("value")] if name else []
    value = values[0] if len(values) == 1 else None
    if isinstance(value, float) and value.is_integer():  # JSON `409.0` is the integer 409
        value = int(value)
    if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, str | int):
        raise RequestRefused("each Parameters.parameter has a name and one simple value")
    return name, str(value)


def _everything(
    resource_type: str,
    logical_id: str,
    request: Request,
    reading: Reading,
) -> Response:
    caller, engine, clock, tokens = reading.caller, reading.engine, reading.clock, reading.tokens
    media = served(request, resource_type)
    if resource_type not in EVERYTHING_TYPES:
        raise NotFound("$everything is served for Patient and Encounter only")
    if not ID_PATTERN.fullmatch(logical_id):
        raise RequestRefused("the id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})")
    since, count = since_and_count(request, EVERYTHING_PARAMETERS)
    types, period = _types(request), _period(request)
    paging = PageRequest.of(request, tokens)
    with reading_store(engine, reading.limits) as conn:
        focal = search.by_reference(conn, caller.tenant, [f"{resource_type}/{logical_id}"])
        if not focal:
            raise NotFound(f"no such {resource_type}")
        snapshot = paging.snapshot() or take_snapshot(conn, clock())
        pks = compartment.everything(conn, caller.tenant, focal[0], snapshot, since)
        if period is not None:
            pks = compartment.in_period(conn, pks, *period)
        found = compartment.rows(conn, pks)
    readable = [f for f in found if may_read(caller, f.resource_type) and _wanted(f, types)]
    rows = _from_cursor(readable, paging, count) if count else []
    paged = Paged.of(rows, count, paging.cursor)
    links = page_links(request, tokens, paged, lambda f: (f.pk, f.pk), (paging.digest, snapshot))
    base = base_url(request)
    entries: list[AnswerValue] = [entry(base, f, "match") for f in paged.rows]
    log.info(
        "FHIR API: key %s read the $everything of a %s (%d resources)",
        caller.key_id,
        resource_type,
        len(readable),
    )
    return answer(request, searchset(len(readable), links, entries, snapshot.at), media)


def _types(request: Request) -> frozenset[str] | None:
    """`_type`: the types to return (each given one a served type), None: every type."""
    given = request.query_params.getlist("_type")
    if not given:
        return None
    types = frozenset(name for value in given for name in value.split(","))
    if not types <= set(SERVED_TYPES):
        raise RequestRefused("_type names a type this server does not serve")
    return types


def _wanted(found: Found, types: Iterable[str] | None) -> bool:
    return types is None or found.resource_type in types


def _period(request: Request) -> tuple[datetime | None, datetime | None] | None:
    """`start`, `end`: the care period asked for (each end open when not given)."""
    start, end = request.query_params.get("start"), request.query_params.get("end")
    if start is None and end is None:
        return None
    lo = None if start is None else parse_date("start", start).lo
    hi = None if end is None else parse_date("end", end).hi
    return lo, hi


def _from_cursor(rows: list[Found], paging: PageRequest, count: int) -> list[Found]:
    """The rows a keyed page reads from `rows` (by primary key): up to `count + 1`."""
    cursor = paging.cursor
    if cursor is None:
        return rows[: count + 1]
    if cursor.forward:
        return [f for f in rows if f.pk > cursor.pk][: count + 1]
    before = [f for f in rows if f.pk < cursor.pk]
    return before[-(count + 1) :]


@router.get("/Patient/{logical_id}/{compartment_type}", name="fhir_patient_compartment")
async def patient_compartment(
    logical_id: str,
    compartment_type: str,
    request: Request,
    reading: ReadingDep,
) -> Response:
    """The search of `compartment_type` narrowed to the patient's compartment."""
    if compartment_type not in SERVED_TYPES:
        raise NotFound("this server holds no resources of that type")
    if not ID_PATTERN.fullmatch(logical_id):
        raise RequestRefused("the id is not a valid FHIR id ([A-Za-z0-9-.]{1,64})")
    param = _compartment_parameter(compartment_type)
    value = logical_id if param == "_id" else f"Patient/{logical_id}"
    pairs = [(param, value), *request.query_params.multi_items()]
    same = as_get(request, f"/fhir/{compartment_type}", pairs)
    return await search_type(compartment_type, same, reading)


def _compartment_parameter(resource_type: str) -> str:
    for param in (_IN_COMPARTMENT.get(resource_type), "patient", "subject"):
        if param is not None and kind_of(resource_type, param) is not None:
            return param
    raise NotFound(f"{resource_type} has no Patient compartment here")
