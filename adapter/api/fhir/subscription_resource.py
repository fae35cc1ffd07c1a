"""A Subscription resource (R4, backport profile) read into the store's `Spec`, and back.

What we take (anything else is refused with 422 naming the element):

    criteria                         one of our topics' canonical URLs ($topic-list)
    _criteria.extension              backport-filter-criteria, `Type?patient=Patient/<id>`
    status                           requested (active is read as requested) or off
    reason                           required, as R4 asks
    channel.type                     rest-hook
    channel.endpoint                 https to a public address (`adapter.notify.guard`)
    channel.payload                  application/fhir+json (or application/json)
    channel._payload.extension       backport-payload-content: empty, id-only (default),
                                     full-resource
    channel.header                   `Name: value` lines sent with every notification;
                                     they carry the receiver's credential, so reads show
                                     `Name: ***` to a caller who may not update
                                     subscriptions (`as_resource`), and an update sending
                                     a line back as `Name: ***` keeps the value held
                                     (`keep_masked`)
    channel.extension                backport-heartbeat-period, backport-timeout,
                                     backport-max-count
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import orjson

from adapter.api.fhir.common import ID_PATTERN, instant
from adapter.errors import SubscriptionRefused
from adapter.notify.bundles import BACKPORT, EMPTY, FULL_RESOURCE, ID_ONLY
from adapter.store.subscription_topics import BY_URL, Filter, Topic
from adapter.store.subscriptions import ERROR, OFF, REQUESTED, Spec, Stored
from mappings.jsontypes import JsonObject, JsonValue

PROFILE = BACKPORT + "backport-subscription"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT_PERIOD = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
PAYLOAD_TYPES = ("application/fhir+json", "application/json")
DEFAULT_TIMEOUT_SECONDS = 10
DEFAULT_MAX_COUNT = 20
MAX_HEADERS = 10
MAX_HEADER_CHARS = 4096
# Headers a subscription may not set: they are the request's own.
RESERVED_HEADERS = frozenset({"host", "content-type", "content-length", "transfer-encoding"})
_HEADER = re.compile(r"(?P<name>[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}):(?P<value>[^\r\n]*)")
_SERVER_OWNED = ("id", "meta", "error")
# What a read shows in place of a header's value to a caller who may not update.
MASK = "***"

EndpointCheck = Callable[[str], None]


def parse(body: JsonValue, check_endpoint: EndpointCheck) -> Spec:
    """The `Spec` of a Subscription sent to us; `SubscriptionRefused` naming the element."""
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise SubscriptionRefused("Subscription.resourceType must be Subscription")
    topic = _topic(body.get("criteria"))
    if not isinstance(body.get("reason"), str) or not str(body["reason"]).strip():
        raise SubscriptionRefused("Subscription.reason is required")
    status = _status(body.get("status"))
    channel = body.get("channel")
    if not isinstance(channel, dict):
        raise SubscriptionRefused("Subscription.channel is required")
    if channel.get("type") != "rest-hook":
        raise SubscriptionRefused("Subscription.channel.type must be rest-hook")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise SubscriptionRefused("Subscription.channel.endpoint is required")
    check_endpoint(endpoint)
    if channel.get("payload", PAYLOAD_TYPES[0]) not in PAYLOAD_TYPES:
        raise SubscriptionRefused("Subscription.channel.payload must be application/fhir+json")
    stored = {key: value for key, value in body.items() if key not in _SERVER_OWNED}
    return Spec(
        topic=topic.url,
        status=status,
        filters=_filters(topic, body.get("_criteria")),
        endpoint=endpoint,
        content=_content(channel.get("_payload")),
        headers=_headers(channel.get("header")),
        heartbeat_seconds=_number(channel, HEARTBEAT_PERIOD, "valueUnsignedInt", 1, 7 * 86400),
        timeout_seconds=_number(channel, TIMEOUT, "valueUnsignedInt", 1, 120)
        or DEFAULT_TIMEOUT_SECONDS,
        max_count=_number(channel, MAX_COUNT, "valuePositiveInt", 1, 100) or DEFAULT_MAX_COUNT,
        resource=orjson.dumps(stored).decode(),
    )


def as_resource(sub: Stored, *, reveal_headers: bool) -> JsonObject:
    """The Subscription as we hold it: what was sent, with our id, version and status;
    unless `reveal_headers`, each `channel.header` line's value replaced by `MASK`."""
    resource: JsonObject = orjson.loads(sub.spec.resource)
    channel = resource.get("channel")
    if not reveal_headers and isinstance(channel, dict) and "header" in channel:
        channel["header"] = [f"{_name(line)}: {MASK}" for line in sub.spec.headers]
    profiles = [PROFILE]
    answer: JsonObject = {
        "resourceType": "Subscription",
        "id": sub.public_id,
        "meta": {
            "versionId": str(sub.version),
            "lastUpdated": instant(sub.updated_at),
            "profile": profiles,  # type: ignore[dict-item]
        },
    }
    answer |= {key: value for key, value in resource.items() if key != "resourceType"}
    answer["status"] = sub.status
    if sub.status == ERROR and sub.last_error:
        answer["error"] = sub.last_error
    return answer


def keep_masked(spec: Spec, current: Stored) -> Spec:
    """`spec` (an update of `current`) with each header line sent back as `Name: ***`
    holding the value `current` has for that name (the first unclaimed line of it, in
    order); `SubscriptionRefused` when `current` has no such header."""
    if not any(_value(line) == MASK for line in spec.headers):
        return spec
    held: dict[str, list[str]] = {}
    for line in current.spec.headers:
        held.setdefault(_name(line).lower(), []).append(line)
    kept = []
    for line in spec.headers:
        if _value(line) == MASK:
            name = _name(line)
            if not held.get(name.lower()):
                raise SubscriptionRefused(
                    f"Subscription.channel.header: {name} is sent as {MASK} (the value reads "
                    f"hide) but this subscription holds no {name} header to keep: send its value"
                )
            line = held[name.lower()].pop(0)
        kept.append(line)
    resource = orjson.loads(spec.resource)
    resource["channel"]["header"] = kept
    return replace(spec, headers=tuple(kept), resource=orjson.dumps(resource).decode())


def refuse_masked(spec: Spec) -> None:
    """A new subscription must carry its headers' values, never the mask reads show."""
    for line in spec.headers:
        if _value(line) == MASK:
            raise SubscriptionRefused(
                f"Subscription.channel.header: {_name(line)} is {MASK}, the mask reads show in "
                "place of a value; a new subscription must send the value itself"
            )


def _name(line: str) -> str:
    return line.partition(":")[0].strip()


def _value(line: str) -> str:
    return line.partition(":")[2].strip()


def _topic(criteria: JsonValue) -> Topic:
    topic = BY_URL.get(criteria) if isinstance(criteria, str) else None
    if topic is None:
        raise SubscriptionRefused(
            "Subscription.criteria must be one of our topics (GET /fhir/Subscription/$topic-list)"
        )
    return topic


def _status(status: JsonValue) -> str:
    if status in (None, REQUESTED, "active"):
        return REQUESTED
    if status == OFF:
        return OFF
    raise SubscriptionRefused("Subscription.status must be requested, active or off")


def _filters(topic: Topic, element: JsonValue) -> tuple[Filter, ...]:
    if element is None:
        return ()
    extensions = element.get("extension") if isinstance(element, dict) else None
    if not isinstance(extensions, list):
        raise SubscriptionRefused("Subscription._criteria.extension must be a list")
    found = []
    for ext in extensions:
        if not isinstance(ext, dict) or ext.get("url") != FILTER_CRITERIA:
            raise SubscriptionRefused(f"Subscription._criteria.extension: only {FILTER_CRITERIA}")
        found.append(_filter(topic, ext.get("valueString")))
    return tuple(found)


def _filter(topic: Topic, text: JsonValue) -> Filter:
    where = "Subscription._criteria.extension.valueString"
    if not isinstance(text, str) or "?" not in text:
        raise SubscriptionRefused(f"{where} must read Type?patient=Patient/<id>")
    kind, _, query = text.partition("?")
    if kind and topic.resource_types is not None and kind not in topic.resource_types:
        allowed = ", ".join(sorted(topic.resource_types))
        raise SubscriptionRefused(f"{where}: this topic's resource types are {allowed}")
    if kind and not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", kind):
        raise SubscriptionRefused(f"{where}: {kind!r} is not a resource type")
    patient = None
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        if name != "patient":
            raise SubscriptionRefused(f"{where}: the filters are patient and the resource type")
        patient = value.removeprefix("Patient/")
        if not ID_PATTERN.fullmatch(patient):
            raise SubscriptionRefused(f"{where}: patient must be Patient/<id>")
    return Filter(kind or None, patient)


def _content(element: JsonValue) -> str:
    if element is None:
        return ID_ONLY
    extensions = element.get("extension") if isinstance(element, dict) else None
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and ext.get("url") == PAYLOAD_CONTENT:
            code = ext.get("valueCode")
            if code not in (EMPTY, ID_ONLY, FULL_RESOURCE):
                raise SubscriptionRefused(
                    "Subscription.channel._payload: content must be empty, id-only or full-resource"
                )
            return str(code)
    return ID_ONLY


def _headers(element: JsonValue) -> tuple[str, ...]:
    if element is None:
        return ()
    where = "Subscription.channel.header"
    if not isinstance(element, list) or len(element) > MAX_HEADERS:
        raise SubscriptionRefused(f"{where} must be a list of at most {MAX_HEADERS} lines")
    found = []
    for line in element:
        match = _HEADER.fullmatch(line) if isinstance(line, str) else None
        if match is None or len(line) > MAX_HEADER_CHARS:  # type: ignore[arg-type]
            raise SubscriptionRefused(f"{where}: each line must read `Name: value`")
        if match["name"].lower() in RESERVED_HEADERS:
            raise SubscriptionRefused(f"{where}: {match['name']} is set by the server")
        found.append(f"{match['name']}: {match['value'].strip()}")
    return tuple(found)


def _number(channel: JsonObject, url: str, kind: str, low: int, high: int) -> int | None:
    extensions = channel.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and ext.get("url") == url:
            value = ext.get(kind)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                name = url.rsplit("/", 1)[1]
                raise SubscriptionRefused(
                    f"Subscription.channel.extension {name}: {kind} from {low} to {high}"
                )
            return value
    return None
