"""Sending an encounter's Bundle: transaction, fallback to batch, per-entry retries, failures."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest
import requests
import responses

from adapter.errors import (
    EhrAmbiguousMatch,
    EhrBadResponse,
    EhrConflict,
    EhrContention,
    EhrError,
    EhrRateLimited,
    EhrRejected,
    EhrTimeout,
    EhrUnavailable,
)
from mappings.common import identity
from mappings.common.bundle import transaction_bundle
from mappings.common.lookup import obj, objs
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue
from tests.unit.adapter.ehr.support import (
    BASE,
    FakeClock,
    at,
    capability,
    make_client,
    sent_json,
)

CTX = MappingContext()
PATIENT = identity.patient(CTX, "MRN-1")
ENCOUNTER = identity.encounter(CTX, "ENC-1")
OBSERVATION = identity.identity(CTX, "Observation", "vitals", "ENC-1", "1")


def _bundle() -> JsonObject:
    """Encounter first, so that a batch must reorder: it refers to the Patient."""
    encounter: JsonObject = {
        "resourceType": "Encounter",
        "identifier": [ENCOUNTER.identifier()],
        "subject": PATIENT.ref(),
    }
    observation: JsonObject = {
        "resourceType": "Observation",
        "identifier": [OBSERVATION.identifier()],
        "subject": PATIENT.ref(),
        "encounter": ENCOUNTER.ref(),
    }
    patient: JsonObject = {"resourceType": "Patient", "identifier": [PATIENT.identifier()]}
    return transaction_bundle([encounter, observation, patient], CTX)


def _response(mode: str, *statuses: str) -> JsonObject:
    entries: list[JsonValue] = [
        {"response": {"status": s, "location": f"X/{i}/_history/1", "etag": 'W/"1"'}}
        for i, s in enumerate(statuses)
    ]
    return {"resourceType": "Bundle", "type": f"{mode}-response", "entry": entries}


def _sent(ehr: responses.RequestsMock) -> list[JsonObject]:
    return [sent_json(c.request) for c in ehr.calls if c.request.method == "POST"]


def _types(bundle: JsonObject) -> list[JsonValue]:
    return [at(e, "resource", "resourceType") for e in objs(bundle.get("entry"))]


def _outcome(text: str, code: str = "processing") -> JsonObject:
    issue: JsonObject = {"severity": "error", "code": code, "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@pytest.fixture
def transactional(ehr: responses.RequestsMock) -> responses.RequestsMock:
    ehr.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
    return ehr


# --- transaction ---


def test_send__transaction_succeeds__every_entry_recorded(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "response": {
                    "status": "201 Created",
                    "location": "Encounter/e9/_history/1",
                    "etag": 'W/"1"',
                    "lastModified": "2026-03-01T10:00:00Z",
                }
            },
            {"response": {"status": "200 OK", "location": f"{BASE}/Observation/o9/_history/4"}},
            {"response": {"status": "200", "etag": 'W/"7"'}},
        ],
    }
    transactional.post(BASE, json=answer)
    result = make_client(clock).send(_bundle())
    assert (result.mode, result.is_success, result.posts) == ("transaction", True, 1)
    first, second, third = result.entries
    assert (first.status, first.resource_type, first.resource_id, first.version_id) == (
        201,
        "Encounter",
        "e9",
        "1",
    )
    assert (first.etag, first.last_modified) == ('W/"1"', "2026-03-01T10:00:00Z")
    assert first.request_url == f"Encounter?identifier={ENCOUNTER.system}|ENC-1"
    assert (second.resource_id, second.version_id) == ("o9", "4")
    assert (third.resource_id, third.version_id) == (None, "7")
    request = transactional.calls[1].request
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert _sent(transactional)[0]["type"] == "transaction"


def test_send__several_bundles__capabilities_read_once(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    transactional.post(BASE, json=_response("transaction", "200", "200", "200"))
    client = make_client(clock)
    client.send(_bundle())
    client.send(_bundle())
    assert [c.request.method for c in transactional.calls] == ["GET", "POST", "POST"]


# --- fallback to batch ---


def test_send__transaction_not_supported__batch_with_standalone_references(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    ehr.post(BASE, json=_response("batch", "201", "201", "201"))
    result = make_client(clock).send(_bundle())
    (sent,) = _sent(ehr)
    assert sent["type"] == "batch"
    assert _types(sent) == ["Patient", "Encounter", "Observation"]
    text = json.dumps(sent)
    assert "urn:uuid:" not in text.replace('"fullUrl": "urn:uuid:', "")
    subject = at(sent, "entry", 1, "resource", "subject", "reference")
    assert subject == f"Patient?identifier={PATIENT.system}|MRN-1"
    assert result.mode == "batch"
    assert [e.resource_type for e in result.entries] == ["Encounter", "Observation", "Patient"]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (413, {}),
        (400, _outcome("Bundle has too many entries (max 100)")),
        (422, _outcome("Transaction exceeds the maximum size")),
        (400, _outcome("stopped", code="too-costly")),
    ],
)
def test_send__transaction_too_large__same_entries_as_batch(
    transactional: responses.RequestsMock, clock: FakeClock, status: int, body: JsonObject
) -> None:
    transactional.post(BASE, status=status, json=body)
    transactional.post(BASE, json=_response("batch", "201", "201", "201"))
    result = make_client(clock).send(_bundle())
    assert [b["type"] for b in _sent(transactional)] == ["transaction", "batch"]
    assert result.mode == "batch"
    assert result.is_success


def test_send__transaction_refused_for_another_reason__rejected_without_fallback(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    outcome = _outcome("Observation.status: minimum required = 1, but only found 0")
    transactional.post(BASE, status=400, json=outcome)
    with pytest.raises(EhrRejected) as caught:
        make_client(clock).send(_bundle())
    assert caught.value.outcome == outcome
    assert not caught.value.retryable
    assert "Observation.status" not in str(caught.value)
    assert len(_sent(transactional)) == 1


# --- batch entries: retry only what failed and may succeed ---


def test_send__batch_entries_fail_mixed__only_retryable_ones_resent(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    # Batch order is Patient, Encounter, Observation.
    ehr.post(BASE, json=_response("batch", "201 Created", "503", "429"))
    ehr.post(BASE, json=_response("batch", "200 OK", "503"))
    ehr.post(BASE, json=_response("batch", "201 Created"))
    result = make_client(clock).send(_bundle())
    assert [_types(b) for b in _sent(ehr)] == [
        ["Patient", "Encounter", "Observation"],
        ["Encounter", "Observation"],
        ["Observation"],
    ]
    assert [e.status for e in result.entries] == [200, 201, 201]
    assert result.is_success
    assert result.posts == 3
    assert clock.slept == [0.5, 2.0]


def test_send__batch_entry_fails_for_good__not_resent_and_reported(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    outcome = _outcome("Encounter.status is required")
    answer = _response("batch", "201", "400", "201")
    obj(at(answer, "entry", 1, "response"))["outcome"] = outcome
    ehr.post(BASE, json=answer)
    result = make_client(clock).send(_bundle())
    (failure,) = result.failures
    assert (failure.resource_type, failure.status, failure.outcome) == ("Encounter", 400, outcome)
    assert isinstance(failure.error, EhrRejected)
    assert not failure.is_retryable
    assert len(_sent(ehr)) == 1


def test_send__batch_entry_keeps_failing__left_retryable_after_last_round(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    ehr.post(BASE, json=_response("batch", "201", "201", "503"))
    ehr.post(BASE, json=_response("batch", "503"))
    result = make_client(clock).send(_bundle())
    assert result.posts == 3
    assert [f.resource_type for f in result.failures] == ["Observation"]
    assert isinstance(result.failures[0].error, EhrUnavailable)
    assert result.failures[0].is_retryable


def test_send__batch_retry_round_cannot_connect__earlier_answers_kept(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    ehr.post(BASE, json=_response("batch", "201", "201", "503"))
    ehr.post(BASE, body=requests.ConnectionError("reset"))
    result = make_client(clock).send(_bundle())
    statuses = {e.resource_type: e.status for e in result.entries}
    assert statuses == {"Patient": 201, "Encounter": 201, "Observation": 503}
    assert result.posts == 1


def test_send__batch_entry_412__classified_per_entry(
    ehr: responses.RequestsMock, clock: FakeClock
) -> None:
    ehr.get(f"{BASE}/metadata", json=capability("batch"))
    answer = _response("batch", "201", "201", "412")
    outcome = _outcome("this search matched 2 resources")
    obj(at(answer, "entry", 2, "response"))["outcome"] = outcome
    ehr.post(BASE, json=answer)
    (failure,) = make_client(clock).send(_bundle()).failures
    assert isinstance(failure.error, EhrAmbiguousMatch)


# --- whole-Bundle failures ---


def test_send__429_retry_after_seconds__rate_limited(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    transactional.post(BASE, status=429, headers={"Retry-After": "120"})
    with pytest.raises(EhrRateLimited) as caught:
        make_client(clock).send(_bundle())
    assert caught.value.retry_after == 120


def test_send__429_retry_after_http_date__seconds_from_now(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    later = formatdate(clock.now + 90, usegmt=True)
    transactional.post(BASE, status=429, headers={"Retry-After": later})
    with pytest.raises(EhrRateLimited) as caught:
        make_client(clock).send(_bundle())
    assert caught.value.retry_after == 90


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"status": 500}, EhrUnavailable),
        ({"status": 502, "body": "<html>Bad Gateway</html>"}, EhrUnavailable),
        ({"status": 503, "headers": {"Retry-After": "5"}}, EhrUnavailable),
        ({"status": 409, "json": _outcome("HAPI-0550: concurrent modification")}, EhrContention),
        ({"body": requests.ConnectionError("Connection reset by peer")}, EhrUnavailable),
        ({"body": requests.ReadTimeout("no answer")}, EhrTimeout),
    ],
)
def test_send__retryable_failure__retryable_error(
    transactional: responses.RequestsMock,
    clock: FakeClock,
    reply: dict[str, object],
    error: type[EhrError],
) -> None:
    transactional.add(responses.POST, BASE, **reply)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        make_client(clock).send(_bundle())
    assert caught.value.retryable


def test_send__412_after_if_match__version_conflict(
    transactional: responses.RequestsMock, clock: FakeClock
) -> None:
    bundle = _bundle()
    obj(at(bundle, "entry", 0, "request"))["ifMatch"] = 'W/"2"'
    transactional.post(BASE, status=412, json=_outcome("Precondition failed"))
    with pytest.raises(EhrConflict) as caught:
        make_client(clock).send(bundle)
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "text",
    [
        "Failed to UPDATE resource with match URL because this search matched 2 resources",
        "Multiple resources match this search",
        "Precondition failed",
    ],
)
def test_send__412_on_conditional_update__ambiguous_match(
    transactional: responses.RequestsMock, clock: FakeClock, text: str
) -> None:
    transactional.post(BASE, status=412, json=_outcome(text))
    with pytest.raises(EhrAmbiguousMatch) as caught:
        make_client(clock).send(_bundle())
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "reply",
    [
        {"body": "<html><body>Welcome</body></html>"},
        {"body": '{"resourceType": "Bundle", "type": '},
        {"json": _response("batch", "201", "201", "201")},
        {"json": {"resourceType": "OperationOutcome"}},
        {"json": _response("transaction", "201", "201")},
        {"json": {"resourceType": "Bundle", "type": "transaction-response", "entry": [{}, {}, {}]}},
        {"json": _response("transaction", "201", "Created", "201")},
    ],
    ids=["html", "invalid-json", "wrong-type", "not-bundle", "too-few", "no-response", "no-code"],
)
def test_send__malformed_answer__bad_response(
    transactional: responses.RequestsMock, clock: FakeClock, reply: dict[str, object]
) -> None:
    transactional.add(responses.POST, BASE, **reply)  # type: ignore[arg-type]
    with pytest.raises(EhrBadResponse):
        make_client(clock).send(_bundle())


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
    ],
)
def test_send__not_a_bundle_we_can_send__value_error_before_any_call(
    ehr: responses.RequestsMock, clock: FakeClock, bundle: JsonObject
) -> None:
    with pytest.raises(ValueError, match="Bundle"):
        make_client(clock).send(bundle)
    assert len(ehr.calls) == 0
