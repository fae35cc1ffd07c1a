"""What a dead letter would send, against what the EHR holds: element paths added, removed
or changed, and never a value."""

from __future__ import annotations

from adapter.console.would_send import PathChange, Planned, compared
from adapter.ehr.client import FetchedResource
from adapter.errors import EhrAmbiguousMatch, EhrNotFound
from adapter.sync.push.payload import Stored
from mappings.common.identity import Identity
from mappings.jsontypes import JsonObject

OURS: JsonObject = {
    "resourceType": "Patient",
    "name": [{"family": "Quixotewhistle"}],
    "telecom": [{"system": "email", "value": "q@example.org"}],
    "birthDate": "1911-11-11",
}
THEIRS: JsonObject = {
    "resourceType": "Patient",
    "id": "77",
    "meta": {"versionId": "3"},
    "name": [{"family": "Quixote"}],
    "gender": "unknown",
    "birthDate": "1911-11-11",
}


class Ehr:
    def __init__(self, held: JsonObject | None, failure: Exception | None = None) -> None:
        self.held, self.failure, self.reads = held, failure, 0

    def read(self, resource_type: str, resource_id: str) -> FetchedResource:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        if self.held is None:
            raise EhrNotFound("gone")
        return FetchedResource(self.held, None)

    def conditional_read_by_identifier(
        self, resource_type: str, system: str, value: str
    ) -> FetchedResource | None:
        if self.failure is not None:
            raise self.failure
        return None if self.held is None else FetchedResource(self.held, None)


def _planned(ehr_id: str | None = "77", deleted: bool = False) -> Planned:
    identity = Identity("Patient", "https://clinic.example/sid/mrn", "MRN-SENTINEL-7731")
    item = Stored("Patient/p1", identity, "{}", deleted, ehr_id, "3" if ehr_id else None)
    return Planned(item, None if deleted else OURS)


def test_compared__held_by_the_ehr__each_path_added_removed_or_changed() -> None:
    [found] = compared([_planned()], Ehr(THEIRS))
    assert found.request == "PUT Patient/77 if still version 3"
    assert set(found.changes) == {
        PathChange("name[0].family", "changed"),
        PathChange("gender", "removed"),
        PathChange("telecom", "added"),
    }
    assert found.verdict == "3 element paths differ"


def test_compared__not_on_the_ehr__new_with_every_path_added() -> None:
    [found] = compared([_planned(ehr_id=None)], Ehr(None))
    assert found.request == "PUT Patient by identifier"
    assert found.verdict == "new on the EHR"
    assert {c.change for c in found.changes} == {"added"}
    assert "MRN-SENTINEL-7731" not in repr(found)


def test_compared__nothing_of_the_values__kept_anywhere() -> None:
    [found] = compared([_planned()], Ehr(THEIRS))
    shown = repr(found)
    for value in ("Quixotewhistle", "Quixote'", "q@example.org", "1911-11-11", "unknown"):
        assert value not in shown


def test_compared__a_deletion__would_delete_or_is_absent() -> None:
    assert compared([_planned(deleted=True)], Ehr(THEIRS))[0].verdict == "would be deleted"
    absent = compared([_planned(deleted=True)], Ehr(None))[0]
    assert absent.verdict == "already absent on the EHR"
    assert absent.request == "DELETE Patient by identifier"


def test_compared__ehr_cannot_answer__says_which_error_class() -> None:
    [found] = compared([_planned(ehr_id=None)], Ehr(THEIRS, EhrAmbiguousMatch("two")))
    assert found.verdict == "cannot read the EHR's version (EhrAmbiguousMatch)"
    assert found.changes == ()


def test_compared__no_ehr_configured__says_so() -> None:
    [found] = compared([_planned()], None)
    assert found.verdict == "no EHR is configured to compare with"
