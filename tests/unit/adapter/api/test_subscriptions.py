"""FHIR Subscriptions on /fhir (R4 Backport IG): management, scopes, tenants, delivery to a
real receiver, refusals. The deliverer is driven round by round here; the worker process
and PostgreSQL are in tests/integration/test_subscriptions_end_to_end.py."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.alerts.watch import AlertWatch
from adapter.alerts.webhook import Alert
from adapter.store import audit
from adapter.store.subscription_topics import ALERT, EHR_CHANGE, ENCOUNTER, SUBMISSION_FAILED
from adapter.store.subscription_upkeep import prune_sent
from tests.receiver import Receiver
from tests.subscription_clients import BACKPORT, deliverer, drain, subscription
from tests.unit.adapter.api.conftest import (
    bearer,
    example,
    post_encounter,
    running,
    subscriptions_app,
)

SUBS_A = "subscriber-of-clinic-a-0123456789abcdef"
SUBS_B = "subscriber-of-clinic-b-0123456789abcdef"
READ_ONLY_A = "sub-reader-of-clinic-a-0123456789abcdef"
FHIR_ONLY_A = "fhir-reader-of-clinic-a-0123456789abcdef"
WRITE = ["clinic/encounters.write", "clinic/submissions.read"]
KEYS = [
    {"key": SUBS_A, "tenant": "clinic-a", "scopes": [*WRITE, "system/Subscription.*"]},
    {"key": SUBS_B, "tenant": "clinic-b", "scopes": [*WRITE, "system/Subscription.cruds"]},
    {"key": READ_ONLY_A, "tenant": "clinic-a", "scopes": ["system/Subscription.rs"]},
    {"key": FHIR_ONLY_A, "tenant": "clinic-a", "scopes": ["system/*.rs"]},
]


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return subscriptions_app(tmp_path, KEYS)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


class SentAlerts:
    """Stands for the alert webhook: keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> bool:
        self.sent.append(alert)
        return True


def create(client: TestClient, body: dict[str, Any], key: str = SUBS_A) -> dict[str, Any]:
    reply = client.post("/fhir/Subscription", json=body, headers=bearer(key))
    assert reply.status_code == 201, reply.text
    made: dict[str, Any] = reply.json()
    return made


def active(client: TestClient, app: FastAPI, hook: Receiver, **kw: Any) -> dict[str, Any]:
    made = create(client, subscription(hook.url, **kw))
    drain(deliverer(app))
    assert len(hook.of_kind("handshake")) == 1
    return made


def with_encounters(client: TestClient, app: FastAPI, hook: Receiver, count: int) -> dict[str, Any]:
    """An active subscription to encounters, then `count` encounters posted (events 1..count)."""
    made = active(client, app, hook)
    for number in range(1, count + 1):
        post_encounter(client, encounter(number), SUBS_A)
    return made


def encounter(number: int, mrn: str = "MRN-1") -> dict[str, Any]:
    document = copy.deepcopy(example("typical-ketamine-infusion"))
    document["encounter_id"] = f"ENC-{number}"
    document["patient"]["mrn"] = mrn
    return document


def test_create__answers_201_requested__then_handshake_makes_it_active(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = create(client, subscription(hook.url))
    assert made["status"] == "requested"
    assert made["meta"]["versionId"] == "1"
    drain(deliverer(app))
    handshake = hook.of_kind("handshake")
    assert len(handshake) == 1
    assert handshake[0].headers["Authorization"] == "Bearer receiver-secret"
    assert handshake[0].status["meta"]["profile"] == [BACKPORT + "backport-subscription-status-r4"]
    read = client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_A)).json()
    assert read["status"] == "active"
    assert read["channel"]["endpoint"] == hook.url


def test_encounters__each_event_arrives_once_in_order_id_only(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = active(client, app, hook)
    for number in range(1, 6):
        assert post_encounter(client, encounter(number), SUBS_A).status_code == 201
    drain(deliverer(app))
    assert hook.event_numbers() == [1, 2, 3, 4, 5]
    first = hook.of_kind("event-notification")[0]
    assert first.bundle["type"] == "history"
    focus = first.bundle["entry"][1]
    assert focus["fullUrl"].split("/fhir/")[1].startswith("Encounter/")
    assert "resource" not in focus
    assert focus["request"]["method"] == "POST"
    status = first.status["parameter"]
    subscription_ref = next(p for p in status if p["name"] == "subscription")
    assert subscription_ref["valueReference"]["reference"].endswith(f"Subscription/{made['id']}")


def test_full_resource__carries_the_encounter_version(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    active(client, app, hook, content="full-resource")
    post_encounter(client, encounter(1), SUBS_A)
    drain(deliverer(app))
    (note,) = hook.of_kind("event-notification")
    resource = note.bundle["entry"][1]["resource"]
    assert resource["resourceType"] == "Encounter"
    assert resource["meta"]["versionId"] == "1"


def test_empty__carries_no_focus(client: TestClient, app: FastAPI, hook: Receiver) -> None:
    active(client, app, hook, content="empty")
    post_encounter(client, encounter(1), SUBS_A)
    drain(deliverer(app))
    (note,) = hook.of_kind("event-notification")
    assert len(note.bundle["entry"]) == 1
    assert note.event_numbers == [1]


def test_tenant__never_sees_another_tenants_events_or_subscriptions(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = active(client, app, hook)
    assert post_encounter(client, encounter(1), SUBS_B).status_code == 201
    drain(deliverer(app))
    assert hook.event_numbers() == []
    other = client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_B))
    assert other.status_code == 404
    listed = client.get("/fhir/Subscription", headers=bearer(SUBS_B)).json()
    assert listed["total"] == 0
    gone = client.delete(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_B))
    assert gone.status_code == 404


def test_patient_filter__only_that_patients_encounters(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    post_encounter(client, encounter(1, "MRN-A"), SUBS_A)
    reading = client.get("/fhir/Subscription", headers=bearer(SUBS_A))
    assert reading.status_code == 200
    patients = app.state.engine
    with patients.connect() as conn:
        from adapter.store.subscription_events import patient_ids

        patient = patient_ids(conn, "clinic-a", ["MRN-A"])["MRN-A"]
    active(client, app, hook, criteria=f"Encounter?patient=Patient/{patient}")
    post_encounter(client, encounter(2, "MRN-B"), SUBS_A)
    post_encounter(client, encounter(3, "MRN-A"), SUBS_A)
    drain(deliverer(app))
    assert hook.event_numbers() == [1]


def test_alert_topic__a_flag_raised(client: TestClient, app: FastAPI, hook: Receiver) -> None:
    active(client, app, hook, topic=ALERT)
    document = example("typical-ketamine-infusion")
    post_encounter(client, document, SUBS_A)
    drain(deliverer(app))
    focus = [
        e["fullUrl"].split("/fhir/")[1].split("/")[0]
        for r in hook.of_kind("event-notification")
        for e in r.bundle["entry"][1:]
    ]
    assert focus
    assert set(focus) <= {"Flag", "DetectedIssue"}


def test_receiver_500_then_recovers__gets_everything_in_order(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    active(client, app, hook)
    hook.answers = [500, 500, 503]
    for number in range(1, 4):
        post_encounter(client, encounter(number), SUBS_A)
    drain(deliverer(app))
    assert hook.event_numbers() == [1, 2, 3]


def test_retry_after__is_honoured(client: TestClient, app: FastAPI, hook: Receiver) -> None:
    made = active(client, app, hook)
    hook.answers, hook.retry_after = [429], "30"
    post_encounter(client, encounter(1), SUBS_A)
    work = deliverer(app, max_wait_seconds=60)
    work.run_once()
    work.run_once()
    assert hook.event_numbers() == []
    status = client.get(f"/fhir/Subscription/{made['id']}/$status", headers=bearer(SUBS_A))
    params = status.json()["entry"][0]["resource"]["parameter"]
    assert {
        "name": "error",
        "valueCodeableConcept": {"text": "ReceiverRefused: HTTP 429"},
    } in params


def test_failures_past_the_limit__error_and_an_audit_row(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = active(client, app, hook)
    alerts = SentAlerts()
    watch = AlertWatch(app.state.settings, app.state.engine, alerts)  # type: ignore[arg-type]
    hook.answers = [500] * 3
    post_encounter(client, encounter(1), SUBS_A)
    drain(deliverer(app, max_failures=3))
    watch.check()
    (told_by_webhook,) = alerts.sent
    assert told_by_webhook.kind == "subscription_error"
    assert told_by_webhook.count == 1
    assert told_by_webhook.console.endswith("/console/subscriptions")
    read = client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_A)).json()
    assert read["status"] == "error"
    assert read["error"] == "ReceiverRefused: HTTP 500"
    with app.state.engine.connect() as conn:
        trail = audit.search(conn, audit.AuditSearch(tenant="clinic-a", limit=100))
    (told,) = [entry for entry in trail if entry.action == "subscription-error"]
    assert told.object == f"Subscription/{made['id']}"
    assert told.outcome == "ReceiverRefused"
    # Set back to requested: a handshake, then the event kept meanwhile.
    read["status"] = "requested"
    again = client.put(f"/fhir/Subscription/{made['id']}", json=read, headers=bearer(SUBS_A))
    assert again.status_code == 200, again.text
    drain(deliverer(app))
    assert hook.event_numbers() == [1]
    assert len(hook.of_kind("handshake")) == 2


def test_events_operation__gives_past_events_by_number(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = with_encounters(client, app, hook, 4)
    reply = client.get(
        f"/fhir/Subscription/{made['id']}/$events",
        params={"eventsSinceNumber": 2, "eventsUntilNumber": 3, "content": "full-resource"},
        headers=bearer(SUBS_A),
    )
    assert reply.status_code == 200
    bundle = reply.json()
    params = bundle["entry"][0]["resource"]["parameter"]
    assert {"name": "type", "valueCode": "query-event"} in params
    assert _event_numbers(bundle) == ["2", "3"]
    assert [e["resource"]["resourceType"] for e in bundle["entry"][1:]] == ["Encounter"] * 2


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("http://93.184.216.34/hook", "https"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
        ("ftp://93.184.216.34/hook", "https"),
    ],
)
def test_create__endpoint_into_the_network__refused_422(
    client: TestClient, endpoint: str, why: str
) -> None:
    reply = client.post("/fhir/Subscription", json=subscription(endpoint), headers=bearer(SUBS_A))
    assert reply.status_code == 422
    text = reply.json()["issue"][0]["diagnostics"]
    assert "Subscription.channel.endpoint" in text
    assert why in text or why == "private" and "private" in text


@pytest.mark.parametrize(
    ("change", "element"),
    [
        ({"criteria": "Encounter?status=finished"}, "Subscription.criteria"),
        ({"reason": ""}, "Subscription.reason"),
        ({"status": "error"}, "Subscription.status"),
        ({"channel": {"type": "websocket"}}, "Subscription.channel.type"),
    ],
)
def test_create__bad_elements__422_naming_them(
    client: TestClient, hook: Receiver, change: dict[str, Any], element: str
) -> None:
    body = subscription(hook.url) | change
    reply = client.post("/fhir/Subscription", json=body, headers=bearer(SUBS_A))
    assert reply.status_code == 422
    assert element in reply.json()["issue"][0]["diagnostics"]


def test_filter_for_a_type_the_topic_lacks__422(client: TestClient, hook: Receiver) -> None:
    body = subscription(hook.url, criteria="Observation?patient=Patient/x")
    reply = client.post("/fhir/Subscription", json=body, headers=bearer(SUBS_A))
    assert reply.status_code == 422


def test_scopes__read_only_cannot_create__fhir_readers_cannot_see(
    client: TestClient, hook: Receiver
) -> None:
    made = create(client, subscription(hook.url))
    refused = client.post(
        "/fhir/Subscription", json=subscription(hook.url), headers=bearer(READ_ONLY_A)
    )
    assert refused.status_code == 403
    assert client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(READ_ONLY_A)).is_success
    blind = client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(FHIR_ONLY_A))
    assert blind.status_code == 403


def test_topic_list__names_our_topics(client: TestClient) -> None:
    reply = client.get("/fhir/Subscription/$topic-list", headers=bearer(SUBS_A))
    urls = [p["valueCanonical"] for p in reply.json()["parameter"]]
    assert set(urls) == {ENCOUNTER, ALERT, SUBMISSION_FAILED, EHR_CHANGE}


def test_delete__drops_it_and_its_queue(client: TestClient, app: FastAPI, hook: Receiver) -> None:
    made = active(client, app, hook)
    post_encounter(client, encounter(1), SUBS_A)
    assert (
        client.delete(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_A)).status_code == 204
    )
    drain(deliverer(app))
    assert hook.event_numbers() == []
    assert client.get(f"/fhir/Subscription/{made['id']}", headers=bearer(SUBS_A)).status_code == 404


def test_heartbeat__sent_when_silent(client: TestClient, app: FastAPI, hook: Receiver) -> None:
    heartbeat = [{"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": 1}]
    active(client, app, hook, extension=heartbeat)
    work = deliverer(app)
    hook.wait_for(lambda: work.run_once() >= 0 and hook.of_kind("heartbeat"), 30, "a heartbeat")


def test_search__by_status__only_those__an_unknown_status_400_naming_it(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = active(client, app, hook)

    def ids(status: str) -> list[str]:
        reply = client.get(f"/fhir/Subscription?status={status}", headers=bearer(SUBS_A))
        assert reply.status_code == 200, reply.text
        return [entry["resource"]["id"] for entry in reply.json()["entry"]]

    assert ids("active") == [made["id"]]
    assert ids("off") == []
    refused = client.get("/fhir/Subscription?status=finished", headers=bearer(SUBS_A))
    assert refused.status_code == 400
    assert "status" in refused.json()["issue"][0]["diagnostics"]


def _flag_events(hook: Receiver) -> list[tuple[str, str]]:
    return [
        (e["request"]["method"], e["fullUrl"].split("/fhir/")[1])
        for r in hook.of_kind("event-notification")
        for e in r.bundle["entry"][1:]
    ]


def test_alert_topic__an_ended_flag_edited_again__no_second_ending(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    active(client, app, hook, topic=ALERT, criteria="Flag?")
    first = example("typical-ketamine-infusion")
    assert post_encounter(client, first, SUBS_A).status_code == 201
    drain(deliverer(app))
    raised = _flag_events(hook)
    assert raised
    assert {method for method, _ in raised} == {"POST"}
    # A week later a screening without those risks: it ends the first visit's Flags.
    later = json.loads(json.dumps(first).replace("2026-11-20", "2026-11-27"))
    later["encounter_id"] = "ENC-2026-1127-001"
    later["intake_screening"] |= {"screening_id": "SCR-88121", "phq9": [1] * 8 + [0]}
    later["intake_screening"]["cssrs"] = dict.fromkeys(first["intake_screening"]["cssrs"], False)
    assert post_encounter(client, later, SUBS_A).status_code == 201
    drain(deliverer(app))
    ended = _flag_events(hook)[len(raised) :]
    assert sorted(url for _, url in ended) == sorted(url for _, url in raised)
    # The first visit sent again, corrected: its Flags change, but stay ended.
    corrected = copy.deepcopy(first)
    corrected["intake_screening"]["completed_at"] = "2026-11-20T08:45:00-05:00"
    assert post_encounter(client, corrected, SUBS_A).status_code == 200
    drain(deliverer(app))
    assert _flag_events(hook) == raised + ended


def test_read_and_search__header_values_masked_unless_the_caller_may_update(
    client: TestClient, hook: Receiver
) -> None:
    made = create(client, subscription(hook.url))
    assert made["channel"]["header"] == ["Authorization: Bearer receiver-secret"]
    url = f"/fhir/Subscription/{made['id']}"
    reader = client.get(url, headers=bearer(READ_ONLY_A)).json()
    assert reader["channel"]["header"] == ["Authorization: ***"]
    assert "receiver-secret" not in client.get(url, headers=bearer(READ_ONLY_A)).text
    listed = client.get("/fhir/Subscription", headers=bearer(READ_ONLY_A))
    assert "receiver-secret" not in listed.text
    assert listed.json()["entry"][0]["resource"]["channel"]["header"] == ["Authorization: ***"]
    writer = client.get(url, headers=bearer(SUBS_A)).json()
    assert writer["channel"]["header"] == ["Authorization: Bearer receiver-secret"]
    # No other door: a Subscription has no history or vread to read it through.
    for other in (f"{url}/_history/1", f"{url}/_history", "/fhir/Subscription/_history"):
        reply = client.get(other, headers=bearer(READ_ONLY_A))
        assert "receiver-secret" not in reply.text, other


def test_put__masked_header_sent_back__keeps_the_credential(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = active(client, app, hook)
    url = f"/fhir/Subscription/{made['id']}"
    body = client.get(url, headers=bearer(READ_ONLY_A)).json()  # as a reader sees it
    body["reason"] = "tell the EHR, again"
    body["status"] = "requested"
    body["channel"]["header"] = [*body["channel"]["header"], "X-Trace: on"]
    again = client.put(url, json=body, headers=bearer(SUBS_A))
    assert again.status_code == 200, again.text
    held = ["Authorization: Bearer receiver-secret", "X-Trace: on"]
    assert again.json()["channel"]["header"] == held
    assert client.get(url, headers=bearer(SUBS_A)).json()["channel"]["header"] == held
    drain(deliverer(app))
    handshake = hook.of_kind("handshake")[-1]
    assert handshake.headers["Authorization"] == "Bearer receiver-secret"
    assert handshake.headers["X-Trace"] == "on"


def test_put__masked_header_it_does_not_hold__422_naming_it(
    client: TestClient, hook: Receiver
) -> None:
    made = create(client, subscription(hook.url))
    body = made | {"channel": made["channel"] | {"header": ["X-Api-Key: ***"]}}
    reply = client.put(f"/fhir/Subscription/{made['id']}", json=body, headers=bearer(SUBS_A))
    assert reply.status_code == 422
    assert "Subscription.channel.header: X-Api-Key" in reply.json()["issue"][0]["diagnostics"]


def test_create__with_the_mask_as_a_value__422_naming_the_header(
    client: TestClient, hook: Receiver
) -> None:
    body = subscription(hook.url, header=["Authorization: ***"])
    reply = client.post("/fhir/Subscription", json=body, headers=bearer(SUBS_A))
    assert reply.status_code == 422
    assert "Subscription.channel.header" in reply.json()["issue"][0]["diagnostics"]


def test_put__masked_body_to_another_tenants_subscription__404_and_nothing_taken(
    client: TestClient, hook: Receiver
) -> None:
    mine = create(client, subscription(hook.url))
    theirs = create(
        client, subscription(hook.url, header=["Authorization: Bearer b-secret"]), key=SUBS_B
    )
    url = f"/fhir/Subscription/{mine['id']}"
    body = client.get(url, headers=bearer(READ_ONLY_A)).json()
    assert client.put(url, json=body, headers=bearer(SUBS_B)).status_code == 404
    # Nor can B's own subscription take A's credential through the mask.
    theirs_url = f"/fhir/Subscription/{theirs['id']}"
    body = theirs | {"channel": theirs["channel"] | {"header": ["Authorization: ***"]}}
    kept = client.put(theirs_url, json=body, headers=bearer(SUBS_B)).json()
    assert kept["channel"]["header"] == ["Authorization: Bearer b-secret"]
    assert client.get(url, headers=bearer(SUBS_A)).json()["meta"]["versionId"] == "1"


def _event_numbers(bundle: dict[str, Any]) -> list[str]:
    return [
        part["valueString"]
        for p in bundle["entry"][0]["resource"]["parameter"]
        if p["name"] == "notification-event"
        for part in p["part"]
        if part["name"] == "event-number"
    ]


def test_retention__status_count_stays__events_of_a_pruned_range_410_naming_the_first_held(
    client: TestClient, app: FastAPI, hook: Receiver
) -> None:
    made = with_encounters(client, app, hook, 3)
    drain(deliverer(app))
    month_later = datetime.now(UTC) + timedelta(days=31)
    assert prune_sent(app.state.engine, month_later, 30) == 4  # the handshake, events 1..3
    url = f"/fhir/Subscription/{made['id']}"
    status = client.get(f"{url}/$status", headers=bearer(SUBS_A)).json()
    params = status["entry"][0]["resource"]["parameter"]
    assert {"name": "events-since-subscription-start", "valueString": "3"} in params
    gone = client.get(f"{url}/$events", params={"eventsSinceNumber": 2}, headers=bearer(SUBS_A))
    assert gone.status_code == 410
    said = gone.json()["issue"][0]["diagnostics"]
    assert "events 2 to 3" in said
    assert "eventsSinceNumber=4" in said
    post_encounter(client, encounter(4), SUBS_A)
    drain(deliverer(app))
    assert hook.event_numbers() == [1, 2, 3, 4]
    since_4 = client.get(f"{url}/$events", params={"eventsSinceNumber": 4}, headers=bearer(SUBS_A))
    assert _event_numbers(since_4.json()) == ["4"]
    held = client.get(f"{url}/$events", headers=bearer(SUBS_A))
    assert held.status_code == 200
    assert _event_numbers(held.json()) == ["4"]
