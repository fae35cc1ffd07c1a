"""A transaction past ADAPTER_EHR_MAX_BUNDLE_ENTRIES goes as several, in dependency order."""

from __future__ import annotations

import json

import responses

from adapter.ehr.batch import request_of, urn_of
from adapter.ehr.chunks import transaction_chunks
from adapter.ehr.client import FhirClient
from adapter.errors import EhrUnavailable
from mappings.common.bundle import transaction_bundle
from mappings.common.lookup import objs, str_field
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.submission import map_submission
from mappings.jsontypes import JsonObject, JsonValue
from tests.large_documents import with_readings
from tests.unit.adapter.ehr.support import BASE, FakeClock, capability, sent_json

CTX = MappingContext()


def _entries(readings: int) -> list[JsonObject]:
    sub = EncounterSubmission.model_validate(with_readings(readings, "ENC-CHUNKS"))
    return objs(transaction_bundle(map_submission(sub, CTX), CTX).get("entry"))


def _references(value: JsonValue) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(ref := item.get("reference"), str):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_chunks__every_entry_once__none_too_large__each_refers_only_back_or_within() -> None:
    entries = _entries(40)
    chunks = transaction_chunks(entries, 25)
    assert len(chunks) > 4
    assert sorted(i for chunk in chunks for i, _ in chunk) == list(range(len(entries)))
    assert all(len(chunk) <= 25 for chunk in chunks)
    urls = {urn_of(e): str_field(request_of(e), "url") for e in entries}
    sent: set[str | None] = set()
    for chunk in chunks:
        inside = {urn_of(e) for _, e in chunk}
        for _, entry in chunk:
            for ref in _references(entry.get("resource")):
                if ref.startswith("urn:uuid:"):
                    assert ref in inside, "an urn:uuid only means something in its own Bundle"
                elif ref in urls.values():
                    assert any(urls[u] == ref for u in sent), "referred to before it exists"
        sent |= inside


def test_chunks__entries_in_a_cycle__travel_together_even_past_the_limit() -> None:
    entries: list[JsonObject] = [
        _entry("Encounter", "E", refers_to="C"),
        _entry("Condition", "C", refers_to="E"),
        _entry("Observation", "O", refers_to="E"),
    ]
    chunks = transaction_chunks(entries, 1)
    assert [[i for i, _ in chunk] for chunk in chunks] == [[0, 1], [2]]
    [(_, observation)] = chunks[1]
    assert _references(observation.get("resource")) == ["Encounter?identifier=urn:t|E"]
    assert _references(chunks[0][0][1].get("resource")) == ["urn:uuid:C"]


def _entry(kind: str, name: str, refers_to: str) -> JsonObject:
    return {
        "fullUrl": f"urn:uuid:{name}",
        "resource": {
            "resourceType": kind,
            "identifier": [{"system": "urn:t", "value": name}],
            "subject": {"reference": f"urn:uuid:{refers_to}"},
        },
        "request": {"method": "PUT", "url": f"{kind}?identifier=urn:t|{name}"},
    }


def _answer(request: object) -> tuple[int, dict[str, str], str]:
    body = sent_json(request)  # type: ignore[arg-type]
    entries: list[JsonValue] = [
        {"response": {"status": "201", "location": f"X/{i}/_history/1"}}
        for i, _ in enumerate(objs(body.get("entry")))
    ]
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return 200, {}, json.dumps(answer)


def _client(max_entries: int) -> FhirClient:
    clock = FakeClock()
    return FhirClient(BASE, clock=clock, sleep=clock.sleep, max_bundle_entries=max_entries)


def test_send__past_the_limit__several_transactions__results_in_entry_order() -> None:
    entries = _entries(20)
    bundle: JsonObject = {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}
    with responses.RequestsMock() as ehr:
        ehr.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
        ehr.add_callback(responses.POST, BASE, callback=_answer)
        result = _client(20).send(bundle)
        posted = [sent_json(c.request) for c in ehr.calls if c.request.method == "POST"]
    assert len(posted) == len(transaction_chunks(entries, 20)) > 1
    assert all(b["type"] == "transaction" and len(objs(b["entry"])) <= 20 for b in posted)
    assert result.is_success
    assert result.posts == len(posted)
    assert [r.index for r in result.entries] == list(range(len(entries)))


def test_send__a_later_chunk_fails__delivered_kept__the_rest_carry_its_error() -> None:
    entries = _entries(20)
    bundle: JsonObject = {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}
    first = {i for i, _ in transaction_chunks(entries, 20)[0]}
    with responses.RequestsMock() as ehr:
        ehr.get(f"{BASE}/metadata", json=capability("transaction", "batch"))
        ehr.add_callback(responses.POST, BASE, callback=_answer)
        ehr.post(BASE, status=503, headers={"Retry-After": "7"})
        result = _client(20).send(bundle)
    assert {r.index for r in result.entries if r.is_success} == first
    failed = result.failures
    assert len(failed) == len(entries) - len(first)
    assert all(isinstance(r.error, EhrUnavailable) and r.is_retryable for r in failed)
