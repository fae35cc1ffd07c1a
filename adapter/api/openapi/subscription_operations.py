"""`/fhir/Subscription`'s operations for `/openapi.json` (see `adapter.api.openapi.operations`)."""

from __future__ import annotations

from adapter.api.clinic.answer_models import Parameters, Subscription
from adapter.api.clinic.answer_models import SubscriptionBundle as Bundle
from adapter.api.openapi.answers import (
    CHALLENGE,
    FHIR_FAILURES,
    FHIR_MEDIA,
    FHIR_UNAUTHENTICATED,
    LOGICAL_ID,
    NOT_ACCEPTABLE,
    fhir_operation,
    fhir_post,
    outcome_answer,
    query_parameter,
)
from adapter.api.openapi.bodies import request_body
from adapter.api.openapi.document import FHIR_JSON, Answer, Header, Operation
from adapter.store.subscription_topics import TOPICS
from adapter.store.subscriptions import STATUSES

_REFUSALS = (
    FHIR_UNAUTHENTICATED,
    outcome_answer(
        403,
        "The credential lacks the `system/Subscription.*` scope (or the SMART letter) "
        "this operation needs",
        {"WWW-Authenticate": CHALLENGE},
    ),
    NOT_ACCEPTABLE,
)
_NOT_FOUND = outcome_answer(404, "No such Subscription for the caller's tenant")
_REFUSED = outcome_answer(
    422,
    "The Subscription breaks the backport profile or our rules (the diagnostics name the "
    "element): an unknown topic or filter, a channel other than rest-hook, an endpoint "
    "that is not https or resolves to a private address not listed by the operator",
)
_NOT_JSON = outcome_answer(400, "The body is not JSON, or its id is not the one in the URL")
_ANSWER = Answer(
    200,
    "The Subscription as held, with `ETag`",
    Subscription,
    FHIR_MEDIA,
    {"ETag": Header('`W/"<version>"`', True)},
)
_TOPIC_TEXT = (
    " Topics: encounter, alert, submission-failed, ehr-change (their canonical URLs: "
    "`$topic-list`); notifications follow the R4 Backport IG (docs/fhir-api.md)."
)

_STRING = {"type": "string"}
SUBSCRIPTION_BODY = request_body(
    FHIR_JSON,
    {
        "type": "object",
        "required": ["resourceType", "criteria", "reason", "channel"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Subscription"]},
            "status": {"type": "string", "enum": ["requested", "active", "off"]},
            "reason": {"type": "string", "minLength": 1},
            "criteria": {"type": "string", "enum": [t.url for t in TOPICS]},
            "channel": {
                "type": "object",
                "required": ["type", "endpoint"],
                "properties": {
                    "type": {"type": "string", "enum": ["rest-hook"]},
                    "endpoint": {"type": "string", "format": "uri"},
                    "payload": {"type": "string", "enum": ["application/fhir+json"]},
                    "header": {"type": "array", "items": _STRING, "maxItems": 10},
                },
            },
        },
    },
    "A Subscription (R4, backport profile): docs/fhir-api.md",
    required=True,
)

SUBSCRIPTION_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("get", "/fhir/Subscription/$topic-list"): fhir_operation(
        "Our subscription topics",
        "A Parameters resource naming each SubscriptionTopic's canonical URL "
        "(`subscription-topic-canonical`), for a Subscription's `criteria`." + _TOPIC_TEXT,
        Answer(200, "A Parameters resource", Parameters, FHIR_MEDIA),
        *_REFUSALS,
        *FHIR_FAILURES,
    ),
    ("post", "/fhir/Subscription"): fhir_post(
        "Create a Subscription",
        "Stores a topic-based Subscription (backport profile, rest-hook) of the caller's "
        "tenant as `requested`; the worker sends it a handshake, which makes it `active`."
        + _TOPIC_TEXT,
        Answer(
            201,
            "The Subscription created, with `Location` and `ETag`",
            Subscription,
            FHIR_MEDIA,
            {"Location": Header("Its URL, with its version", True)},
        ),
        _NOT_JSON,
        *_REFUSALS,
        _REFUSED,
        *FHIR_FAILURES,
    ),
    ("get", "/fhir/Subscription"): fhir_operation(
        "The tenant's Subscriptions",
        "Every Subscription of the caller's tenant in a `searchset` Bundle, or those of one "
        "`status` (requested, active, error, off).",
        Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
        outcome_answer(400, "A `status` other than requested, active, error or off"),
        *_REFUSALS,
        *FHIR_FAILURES,
        parameters=(
            query_parameter(
                "status",
                "Only the Subscriptions of this status",
                {"type": "string", "enum": list(STATUSES)},
            ),
        ),
    ),
    ("get", "/fhir/Subscription/{logical_id}"): fhir_operation(
        "Read a Subscription",
        "The Subscription as held: what was sent, with our id, version and current status "
        "(and `error` once deliveries failed past the limit). The values of "
        "`channel.header` (the receiver's credential) read `***` unless the caller may "
        "update Subscriptions.",
        _ANSWER,
        *_REFUSALS,
        _NOT_FOUND,
        *FHIR_FAILURES,
        parameters=(LOGICAL_ID,),
    ),
    ("put", "/fhir/Subscription/{logical_id}"): fhir_post(
        "Update a Subscription",
        "Replaces the Subscription. Status `requested` (or a new endpoint) starts it again "
        "with a handshake; `off` stops new events. Event numbers carry on.",
        _ANSWER,
        _NOT_JSON,
        *_REFUSALS,
        _NOT_FOUND,
        _REFUSED,
        *FHIR_FAILURES,
        parameters=(LOGICAL_ID,),
    ),
    ("delete", "/fhir/Subscription/{logical_id}"): fhir_post(
        "Delete a Subscription",
        "Deletes the Subscription and its notifications not yet delivered; nothing more is "
        "sent to its endpoint.",
        Answer(204, "Deleted"),
        *_REFUSALS,
        _NOT_FOUND,
        *FHIR_FAILURES,
        parameters=(LOGICAL_ID,),
    ),
    ("get", "/fhir/Subscription/{logical_id}/$status"): fhir_operation(
        "A Subscription's status",
        "A `searchset` Bundle of one Parameters (backport-subscription-status-r4, type "
        "`query-status`): status, topic, events since the start, and the last error.",
        Answer(200, "A searchset Bundle", Bundle, FHIR_MEDIA),
        *_REFUSALS,
        _NOT_FOUND,
        *FHIR_FAILURES,
        parameters=(LOGICAL_ID,),
    ),
    ("get", "/fhir/Subscription/{logical_id}/$events"): fhir_operation(
        "A Subscription's past events",
        "A `history` Bundle like a notification (type `query-event`) of the events numbered "
        "`eventsSinceNumber` to `eventsUntilNumber` (at most 1000), with `content` as asked: "
        "how a receiver fills a gap in the event numbers. Sent events are kept "
        "`ADAPTER_SUBSCRIPTION_RETENTION_DAYS` (30 by default).",
        Answer(200, "A history Bundle", Bundle, FHIR_MEDIA),
        outcome_answer(400, "A `content` other than empty, id-only or full-resource"),
        outcome_answer(
            410,
            "Events asked for are no longer held (the retention deleted them); the "
            "diagnostics name the first event number still held",
        ),
        *_REFUSALS,
        _NOT_FOUND,
        *FHIR_FAILURES,
        parameters=(
            LOGICAL_ID,
            query_parameter("eventsSinceNumber", "The first event number", {"type": "integer"}),
            query_parameter("eventsUntilNumber", "The last event number", {"type": "integer"}),
            query_parameter(
                "content",
                "The payload content",
                {"type": "string", "enum": ["empty", "id-only", "full-resource"]},
            ),
        ),
    ),
}
