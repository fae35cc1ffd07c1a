"""`GET /admin/AuditEvent`: the caller's tenant's audit trail as R4 AuditEvent resources.

Needs the scope `admin/AuditEvent.rs` (or `admin/AuditEvent.read`, `admin/*.rs`,
`admin/*.*`, ...): no `system/` or `clinic/` scope grants it, so a key that reads clinical
data does not also see who else read it. Only the caller's tenant's rows are returned.

`GET /admin/AuditEvent/{id}` reads one event of the caller's tenant (404 for any other id,
another tenant's included): the `fullUrl` of each search entry answers.

Parameters of the search (any other is 400): `date` (repeatable; prefixes `ge`, `gt`,
`le`, `lt`, `eq`, a FHIR date or dateTime, UTC when no offset), `agent` (the caller name as
recorded: `key:<8 hex>`, `jwt:<client>`), `outcome` (`0` success, `4` refused, `8` failed),
`_count` (default 100, clamped to 1..1000) and `_cursor` (from the `next` link). Newest
first.

An AuditEvent's id is the row's random public id, and the `_cursor` holds only the last
event's `recorded` time and id: nothing a tenant reads counts the other tenants' calls.

Each row becomes an AuditEvent: `type` rest with the restful interaction as `subtype`
(push worker rows: DICOM Export), `action` C/R/U/E, `recorded`, `outcome` and
`outcomeDesc` (`HTTP 404`), the caller as `agent.who.identifier`, the tenant as
`source.site`, and what was touched as `entity` (a reference for `Type/id`, else a
description such as `Observation?code,patient`).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from adapter.api.auth.callers import Caller, authenticated_caller
from adapter.api.deps import EngineDep, StoreReady
from adapter.api.fhir.common import (
    SERVED_TYPES,
    FhirRoute,
    as_utc,
    fhir_response,
    instant,
    media_type,
)
from adapter.errors import InsufficientScope, NotFound, RequestRefused
from adapter.store import audit
from adapter.store.audit import AuditEntry, AuditSearch, Moment
from mappings.common.narrative import with_narrative
from mappings.jsontypes import JsonObject, JsonValue

ADMIN_AUDIT_READ = "admin/AuditEvent.rs"
DEFAULT_COUNT = 100
MAX_COUNT = 1000
PARAMETERS = frozenset({"date", "agent", "outcome", "_count", "_cursor", "_format"})
ADAPTER_DISPLAY = "Ketamine clinic FHIR adapter"
_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
_ADMIN_SCOPE = re.compile(r"admin/(AuditEvent|\*)\.(read|\*|[cuds]*r[cuds]*)")
_DATE = re.compile(
    r"(?P<prefix>eq|ge|gt|le|lt)?(?P<value>\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?)"
)
_ACTIONS = {
    "create": "C",
    "update": "U",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
}
_RESTFUL = "http://hl7.org/fhir/restful-interaction"
_REST_TYPE: JsonObject = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_EXPORT_TYPE: JsonObject = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110106",
    "display": "Export",
}

router = APIRouter(prefix="/admin", route_class=FhirRoute, tags=["admin"])


async def audit_reader(request: Request) -> Caller:
    caller = authenticated_caller(request, "admin API")
    if not any(grants_audit_read(scope) for scope in caller.scopes):
        raise InsufficientScope(ADMIN_AUDIT_READ)
    return caller


def grants_audit_read(scope: str) -> bool:
    """Whether `scope` lets its holder read the audit trail."""
    return _ADMIN_SCOPE.fullmatch(scope) is not None


AuditReader = Annotated[Caller, Depends(audit_reader)]


@router.get("/AuditEvent")
def search_audit_events(
    request: Request, caller: AuditReader, engine: EngineDep, _: StoreReady
) -> Response:
    media = media_type(request)
    params = request.query_params
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise RequestRefused(f"unknown search parameter: {', '.join(unknown)}")
    count = _count(params.get("_count"))
    dates = [date_moment(value) for value in params.getlist("date")]
    agent = params.get("agent")
    outcome = outcome_class(params["outcome"]) if "outcome" in params else None
    after = _after(params["_cursor"]) if "_cursor" in params else None
    asked = AuditSearch(caller.tenant, count + 1, dates, agent, outcome, after)
    with engine.connect() as connection:
        rows = audit.search(connection, asked)
    base = str(request.base_url).rstrip("/")
    namespace: str = request.app.state.settings.namespace
    bundle: JsonObject = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base}/admin/AuditEvent/{row.public_id}",
                "resource": audit_event(row, namespace),
                "search": {"mode": "match"},
            }
            for row in rows[:count]
        ],
    }
    if len(rows) > count:
        following = params.multi_items()
        kept = [(k, v) for k, v in following if k != "_cursor"]
        kept.append(("_cursor", _cursor(rows[count - 1])))
        query_string = "&".join(f"{k}={_quote(v)}" for k, v in kept)
        bundle["link"].append(  # type: ignore[union-attr]
            {"relation": "next", "url": f"{base}/admin/AuditEvent?{query_string}"}
        )
    return fhir_response(bundle, media=media)


@router.get("/AuditEvent/{event_id}")
def read_audit_event(
    event_id: str, request: Request, caller: AuditReader, engine: EngineDep, _: StoreReady
) -> Response:
    media = media_type(request)
    row = None
    if _PUBLIC_ID.fullmatch(event_id):
        with engine.connect() as connection:
            row = audit.read(connection, caller.tenant, event_id)
    if row is None:
        raise NotFound("no AuditEvent by that id")
    namespace: str = request.app.state.settings.namespace
    return fhir_response(audit_event(row, namespace), media=media)


def audit_event(row: AuditEntry, namespace: str) -> JsonObject:
    """One audit row as an R4 AuditEvent (see the module doc for the mapping)."""
    interaction = row.action
    is_push = interaction.startswith("push-")
    outcome = row.outcome
    event: JsonObject = {
        "resourceType": "AuditEvent",
        "id": row.public_id,
        "type": _EXPORT_TYPE if is_push else _REST_TYPE,
        "action": "E" if is_push else _ACTIONS.get(interaction, "E"),
        "recorded": instant(row.at),
        "outcome": _outcome_code(interaction, outcome),
        "outcomeDesc": outcome if is_push else f"HTTP {outcome}",
        "agent": [
            {
                "who": {
                    "identifier": {"system": f"{namespace}/api-caller", "value": row.actor},
                    "display": row.actor,
                },
                "requestor": not is_push,
            }
        ],
        "source": {"site": row.tenant, "observer": {"display": ADAPTER_DISPLAY}},
        "entity": [_entity(row.object, row.count)],
    }
    if not is_push:
        event["subtype"] = [{"system": _RESTFUL, "code": interaction}]
    return with_narrative(event)


def _entity(what: str, count: int) -> JsonObject:
    detail: list[JsonValue] = [{"type": "count", "valueString": str(count)}]
    kind, _, rest = what.partition("/")
    if kind in SERVED_TYPES and rest and "/" not in rest and "?" not in rest:
        return {"what": {"reference": what}, "detail": detail}
    return {"description": what, "detail": detail}


def _outcome_code(interaction: str, outcome: str) -> str:
    if interaction.startswith("push-"):
        return "4" if interaction == "push-conflict" else "8"
    return {"1": "0", "2": "0", "3": "0", "4": "4"}.get(outcome[:1], "8")


def outcome_class(value: str) -> str:
    """The `outcome` asked for, once known to be one of the classes searched for."""
    if value not in ("0", "4", "8"):
        raise RequestRefused("outcome: must be 0, 4 or 8")
    return value


def date_moment(value: str) -> Moment:
    """A `date` parameter as the store's criterion: a date covers its whole (UTC) day."""
    match = _DATE.fullmatch(value)
    if match is None:
        raise RequestRefused("date: must be [eq|ge|gt|le|lt]YYYY-MM-DD[Thh:mm:ss[Z|+hh:mm]]")
    text = match["value"]
    try:
        start = as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise RequestRefused("date: not a valid date or dateTime") from None
    end = start + timedelta(days=1) if "T" not in text else start
    return Moment(match["prefix"] or "eq", start, end)


def _cursor(row: AuditEntry) -> str:
    """Where the next page starts: after this event (its time and id, nothing else)."""
    text = f"{row.at.isoformat()}|{row.public_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    """The events older than the cursor's, in the order of the answer (400 if unreadable)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment_text, public_id = text.split("|")
        moment = datetime.fromisoformat(moment_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RequestRefused("_cursor: not a paging cursor of this server") from None
    if not _PUBLIC_ID.fullmatch(public_id):
        raise RequestRefused("_cursor: not a paging cursor of this server")
    return moment, public_id


def _count(value: str | None) -> int:
    if value is None:
        return DEFAULT_COUNT
    return max(1, min(MAX_COUNT, _integer("_count", value)))


def _integer(name: str, value: str) -> int:
    # ASCII only: `"²".isdigit()` holds, but `int("²")` fails.
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise RequestRefused(f"{name}: must be a non-negative integer")
    return int(value)


def _quote(value: str) -> str:
    return quote(value, safe=":")
