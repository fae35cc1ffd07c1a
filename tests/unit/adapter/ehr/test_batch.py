"""Transaction entries made standalone for a batch: references and order."""

from __future__ import annotations

import pytest

from adapter.ehr.batch import batch_entries
from mappings.jsontypes import JsonObject, JsonValue
from tests.unit.adapter.ehr.support import at

SYS = "https://fhir.example-clinic.org/sid/mrn"


def _entry(urn: str, request: JsonObject, resource: JsonObject) -> JsonObject:
    return {"fullUrl": f"urn:uuid:{urn}", "request": request, "resource": resource}


def test_batch_entries__put_by_id__reference_becomes_literal() -> None:
    patient = _entry("1", {"method": "PUT", "url": "Patient/k1"}, {"resourceType": "Patient"})
    obs = _entry(
        "2",
        {"method": "POST", "url": "Observation"},
        {"resourceType": "Observation", "subject": {"reference": "urn:uuid:1"}},
    )
    (_, first), (_, second) = batch_entries([obs, patient])
    assert first is not patient
    assert first["resource"] == {"resourceType": "Patient"}
    assert at(second, "resource", "subject") == {"reference": "Patient/k1"}


def test_batch_entries__post_if_none_exist__conditional_reference() -> None:
    patient = _entry(
        "1",
        {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYS}|M1"},
        {"resourceType": "Patient"},
    )
    obs = _entry(
        "2",
        {"method": "POST", "url": "Observation"},
        {"resourceType": "Observation", "subject": {"reference": "urn:uuid:1"}},
    )
    order = batch_entries([patient, obs])
    assert [i for i, _ in order] == [0, 1]
    reference = at(order[1][1], "resource", "subject", "reference")
    assert reference == f"Patient?identifier={SYS}|M1"


def test_batch_entries__plain_post__reference_from_identifier() -> None:
    patient = _entry(
        "1",
        {"method": "POST", "url": "Patient"},
        {"resourceType": "Patient", "identifier": [{"system": SYS, "value": "M 1"}]},
    )
    obs = _entry(
        "2",
        {"method": "POST", "url": "Observation"},
        {"resourceType": "Observation", "subject": {"reference": "urn:uuid:1"}},
    )
    (_, _), (_, rewritten) = batch_entries([patient, obs])
    reference = at(rewritten, "resource", "subject", "reference")
    assert reference == f"Patient?identifier={SYS}|M%201"


def test_batch_entries__reference_to_entry_without_any_name__value_error() -> None:
    patient = _entry("1", {"method": "POST", "url": "Patient"}, {"resourceType": "Patient"})
    obs = _entry(
        "2",
        {"method": "POST", "url": "Observation"},
        {"resourceType": "Observation", "subject": {"reference": "urn:uuid:1"}},
    )
    with pytest.raises(ValueError, match="batch"):
        batch_entries([obs, patient])


def test_batch_entries__references_in_a_cycle__original_order_kept() -> None:
    a = _entry("a", {"method": "PUT", "url": "Group/a"}, {"member": [{"reference": "urn:uuid:b"}]})
    b = _entry("b", {"method": "PUT", "url": "Group/b"}, {"member": [{"reference": "urn:uuid:a"}]})
    assert [i for i, _ in batch_entries([a, b])] == [0, 1]


def test_batch_entries__5000_entries_in_one_long_chain__each_after_what_it_names() -> None:
    count = 5000  # entry n refers to entry n + 1: the last must go first
    entries = [
        _entry(
            str(n),
            {"method": "PUT", "url": f"Basic/b{n}"},
            {"resourceType": "Basic", "subject": {"reference": f"urn:uuid:{n + 1}"}}
            if n + 1 < count
            else {"resourceType": "Basic"},
        )
        for n in range(count)
    ]
    order = batch_entries(entries)
    assert [i for i, _ in order] == list(reversed(range(count)))
    sent: set[str] = set()
    for i, entry in order:
        reference = at(entry, "resource", "subject", "reference") if i + 1 < count else None
        assert reference is None or reference in sent, f"entry {i} before what it names"
        sent.add(f"Basic/b{i}")


def test_batch_entries__entry_naming_a_cycle__goes_after_the_whole_cycle() -> None:
    def group(name: str, *members: str) -> JsonObject:
        refs: list[JsonValue] = [{"reference": f"urn:uuid:{m}"} for m in members]
        return _entry(name, {"method": "PUT", "url": f"Group/{name}"}, {"member": refs})

    entries = [group("x", "a"), group("a", "b"), group("b", "a"), group("y")]
    assert [i for i, _ in batch_entries(entries)] == [1, 2, 0, 3]
