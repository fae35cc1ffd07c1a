"""The R4 Backport IG's notification Bundles and status Parameters, built from the queue.

A notification is a `history` Bundle whose first entry is a Parameters of the profile
`backport-subscription-status-r4` (subscription, topic, status, type,
events-since-subscription-start, one notification-event per event), then, per event, its
focus: a reference only (`id-only`), the focus version's content (`full-resource`), or
nothing (`empty`). `$status` answers a `searchset` of such Parameters (`query-status`);
`$events` a `history` Bundle like a notification (`query-event`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from adapter.store.subscription_queue import Note
from adapter.store.subscription_topics import CREATE, DELETE
from adapter.store.subscriptions import EVENT, Stored
from mappings.jsontypes import JsonObject, JsonValue

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
EMPTY, ID_ONLY, FULL_RESOURCE = "empty", "id-only", "full-resource"
QUERY_STATUS, QUERY_EVENT = "query-status", "query-event"


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_parameters(
    base: str, sub: Stored, kind: str, events: Sequence[Note], content: str, now: datetime
) -> JsonObject:
    """The Parameters (backport-subscription-status-r4) of a notification or a query."""
    parameters: list[JsonValue] = [
        {"name": "subscription", "valueReference": {"reference": _subscription_url(base, sub)}},
        {"name": "topic", "valueCanonical": sub.spec.topic},
        {"name": "status", "valueCode": sub.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(sub.events_count)},
    ]
    parameters += [_event(base, note, content) for note in events if note.kind == EVENT]
    if sub.last_error and kind == QUERY_STATUS:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": sub.last_error}})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE], "lastUpdated": instant(now)},
        "parameter": parameters,
    }


def notification(
    base: str,
    sub: Stored,
    kind: str,
    notes: Sequence[Note],
    contents: Mapping[int, str | None],
    now: datetime,
    content: str | None = None,
) -> JsonObject:
    """A notification (or `$events`) Bundle for `notes`, with `content` (the subscription's
    own payload content unless the caller asked another)."""
    content = content or sub.spec.content
    status = status_parameters(base, sub, kind, notes, content, now)
    entries: list[JsonValue] = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {"method": "GET", "url": f"{_subscription_url(base, sub)}/$status"},
            "response": {"status": "200"},
        }
    ]
    if content != EMPTY:
        for note in notes:
            if note.kind == EVENT and note.focus_type is not None:
                entries.append(_focus_entry(base, note, contents, content == FULL_RESOURCE))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE], "lastUpdated": instant(now)},
        "type": "history",
        "timestamp": instant(now),
        "entry": entries,
    }


def status_bundle(base: str, subs: Sequence[Stored], now: datetime) -> JsonObject:
    """`$status`: a searchset of each subscription's status Parameters."""
    entries: list[JsonValue] = [
        {
            "fullUrl": f"urn:uuid:{params['id']}",
            "resource": params,
            "search": {"mode": "match"},
        }
        for sub in subs
        for params in [status_parameters(base, sub, QUERY_STATUS, (), sub.spec.content, now)]
    ]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }


def _subscription_url(base: str, sub: Stored) -> str:
    return f"{base}/Subscription/{sub.public_id}"


def _event(base: str, note: Note, content: str) -> JsonObject:
    parts: list[JsonValue] = [
        {"name": "event-number", "valueString": str(note.event_number)},
        {"name": "timestamp", "valueInstant": instant(note.occurred_at)},
    ]
    if content != EMPTY and note.focus_type is not None:
        focus = f"{base}/{note.focus_type}/{note.focus_id}"
        parts.append({"name": "focus", "valueReference": {"reference": focus}})
    return {"name": "notification-event", "part": parts}


def _focus_entry(
    base: str, note: Note, contents: Mapping[int, str | None], full: bool
) -> JsonObject:
    url = f"{note.focus_type}/{note.focus_id}"
    entry: JsonObject = {"fullUrl": f"{base}/{url}"}
    if note.action == DELETE:
        entry["request"] = {"method": "DELETE", "url": url}
        entry["response"] = {"status": "204"}
        return entry
    created = note.action == CREATE
    entry["request"] = {
        "method": "POST" if created else "PUT",
        "url": note.focus_type if created else url,
    }
    entry["response"] = {"status": "201" if created else "200"}
    text = contents.get(note.id)
    if full and text is not None:
        resource = orjson.loads(text)
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        resource["meta"] = {**meta, "versionId": str(note.focus_version)}
        entry["resource"] = resource
    return entry
