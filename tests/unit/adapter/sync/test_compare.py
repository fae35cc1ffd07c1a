"""Pairing our copies with the EHR's and naming each difference (no store, no network)."""

from __future__ import annotations

import copy

import orjson

from adapter.sync.push.payload import Stored
from adapter.sync.reconcile.compare import (
    CONTENT_DIFFERS,
    MISSING_ON_EHR,
    NOT_IN_STORE,
    NOT_YET_SENT,
    Difference,
    Ours,
    Scope,
    Tally,
    changed_paths,
    compare,
    content_hash,
)
from mappings.common.identity import Identity
from mappings.common.narrative import with_narrative
from mappings.jsontypes import JsonObject, Resource

SYSTEM = "https://fhir.example-clinic.org/sid/vitals"


def _reading(value: str, heart_rate: float | int = 72) -> Resource:
    return {
        "resourceType": "Observation",
        "id": Identity("Observation", SYSTEM, value).id,
        "meta": {"security": [{"code": "PSY"}]},
        "identifier": [{"system": SYSTEM, "value": value}],
        "status": "final",
        "subject": {"reference": "Patient/41"},
        "valueQuantity": {"value": heart_rate, "unit": "/min"},
    }


def _ours(
    value: str,
    ehr_id: str | None,
    *,
    unsent: bool = False,
    deleted: bool = False,
    heart_rate: float | int = 72,
) -> Ours:
    ident = Identity("Observation", SYSTEM, value)
    content = _reading(value, heart_rate)
    item = Stored(
        key=f"Observation/{ident.id}",
        identity=ident,
        text=orjson.dumps(content).decode(),
        deleted=deleted,
        ehr_id=ehr_id,
        ehr_version=None if ehr_id is None else "1",
    )
    return Ours(item, None if deleted else content, unsent)


def _theirs(mine: Ours, ehr_id: str, **changes: object) -> JsonObject:
    """The EHR's copy of `mine`: its own id and meta, the same content, then `changes`."""
    assert mine.view is not None
    resource: JsonObject = copy.deepcopy(mine.view)
    resource.update({"id": ehr_id, "meta": {"versionId": "3", "lastUpdated": "2026-11-24"}})
    resource.update(changes)  # type: ignore[arg-type]
    return resource


def _compare(ours: list[Ours], theirs: list[JsonObject]) -> tuple[list[Difference], Tally]:
    scope = Scope("clinic-a", "kpatient")
    tally = compare(scope, "Observation", ours, theirs)
    return scope.differences, tally


def _our_id(mine: Ours) -> str:
    return mine.item.identity.id


def test_compare__same_content_other_id_meta_and_text__identical() -> None:
    mine = _ours("V1", "101")
    theirs = _theirs(mine, "101", text={"status": "generated", "div": "<div>x</div>"})
    assert _compare([mine], [theirs]) == ([], Tally(in_store=1, on_ehr=1, identical=1))


def test_compare__our_narrative_dropped_or_regenerated_on_the_ehr__identical() -> None:
    mine = _ours("V1", "101")
    assert mine.view is not None
    mine.view["text"] = with_narrative(mine.view)["text"]
    dropped = _theirs(mine, "101")
    dropped.pop("text")
    regenerated = _theirs(mine, "101", text={"status": "generated", "div": "<div>HAPI</div>"})
    for theirs in (dropped, regenerated):
        assert _compare([mine], [theirs]) == ([], Tally(in_store=1, on_ehr=1, identical=1))
        assert changed_paths(mine.view, theirs) == []


def test_compare__field_changed_on_the_ehr__content_differs_with_its_path() -> None:
    mine = _ours("V1", "101")
    theirs = _theirs(mine, "101", valueQuantity={"value": 80, "unit": "/min"})
    differences, tally = _compare([mine], [theirs])
    assert differences == [
        Difference(
            "clinic-a",
            "kpatient",
            "Observation",
            _our_id(mine),
            "101",
            CONTENT_DIFFERS,
            ("valueQuantity.value",),
        )
    ]
    assert tally == Tally(in_store=1, on_ehr=1, identical=0)


def test_compare__integer_turned_decimal__differs_by_hash_and_names_the_path() -> None:
    mine = _ours("V1", "101", heart_rate=72)
    theirs = _theirs(mine, "101", valueQuantity={"value": 72.0, "unit": "/min"})
    assert mine.view is not None
    assert content_hash(mine.view) != content_hash(theirs)
    (found,), _ = _compare([mine], [theirs])
    assert (found.kind, found.paths) == (CONTENT_DIFFERS, ("valueQuantity.value",))


def test_compare__key_order__same_hash() -> None:
    mine = _ours("V1", "101")
    assert mine.view is not None
    reordered = dict(reversed(list(mine.view.items())))
    assert content_hash(reordered) == content_hash(mine.view)


def test_compare__changed_here_and_still_in_the_outbox__not_yet_sent_with_paths() -> None:
    mine = _ours("V1", "101", unsent=True, heart_rate=90)
    theirs = _theirs(mine, "101", valueQuantity={"value": 72, "unit": "/min"})
    (found,), _ = _compare([mine], [theirs])
    assert (found.kind, found.ehr_id, found.paths) == (
        NOT_YET_SENT,
        "101",
        ("valueQuantity.value",),
    )


def test_compare__never_acknowledged__not_yet_sent_without_ehr_id() -> None:
    mine = _ours("V1", None, unsent=True)
    (found,), tally = _compare([mine], [])
    assert (found.kind, found.our_id, found.ehr_id) == (NOT_YET_SENT, _our_id(mine), None)
    assert tally == Tally(in_store=1, on_ehr=0, identical=0)


def test_compare__acknowledged_but_not_returned__missing_on_the_ehr() -> None:
    mine = _ours("V1", "101")
    (found,), _ = _compare([mine], [])
    assert (found.kind, found.ehr_id) == (MISSING_ON_EHR, "101")


def test_compare__only_on_the_ehr__not_in_the_store_without_our_id() -> None:
    other = _theirs(_ours("EHR-made", "999"), "999", identifier=[])
    (found,), tally = _compare([], [other])
    assert (found.kind, found.our_id, found.ehr_id) == (NOT_IN_STORE, None, "999")
    assert tally == Tally(in_store=0, on_ehr=1, identical=0)


def test_compare__answer_lost_but_ehr_holds_our_identifier__one_not_yet_sent() -> None:
    mine = _ours("V1", None, unsent=True)
    (found,), _ = _compare([mine], [_theirs(mine, "101")])
    assert (found.kind, found.our_id, found.ehr_id) == (NOT_YET_SENT, _our_id(mine), "101")


def test_compare__tombstone_still_on_the_ehr__not_yet_sent_when_queued_else_not_in_store() -> None:
    alive = _ours("V1", "101")
    queued = _ours("V1", "101", deleted=True, unsent=True)
    pulled = _ours("V1", "101", deleted=True)
    (found,), tally = _compare([queued], [_theirs(alive, "101")])
    assert (found.kind, found.ehr_id) == (NOT_YET_SENT, "101")
    assert tally.in_store == 0
    ((found,), _) = _compare([pulled], [_theirs(alive, "101")])
    assert found.kind == NOT_IN_STORE
    assert _compare([pulled], []) == ([], Tally())


def test_compare__ehr_lists_one_resource_twice__counted_once() -> None:
    mine = _ours("V1", "101")
    theirs = _theirs(mine, "101")
    assert _compare([mine], [theirs, theirs]) == ([], Tally(in_store=1, on_ehr=1, identical=1))
