"""Field coverage finds where each field went, and notices a field the mappers drop."""

from __future__ import annotations

from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from mappings.encounter.coverage import field_coverage, round_trip_differences
from mappings.encounter.submission import map_submission
from mappings.jsontypes import Resource
from tests.unit.mappings.fhircheck import load_example

CTX = MappingContext()


def _without_birth_date(sub: EncounterSubmission, ctx: MappingContext) -> list[Resource]:
    out = map_submission(sub, ctx)
    for res in out:
        if res["resourceType"] == "Patient":
            res.pop("birthDate", None)
    return out


def test_field_coverage__typical__every_present_field_reaches_fhir() -> None:
    report = field_coverage(load_example("typical-ketamine-infusion"), CTX)
    assert report
    assert [c.path for c in report if c.dropped] == []
    where = {c.path: c.targets for c in report}
    assert where["patient.birth_date"] == ("Patient.birthDate",)
    assert "Patient.identifier" in where["patient.mrn"]


def test_field_coverage__mapper_dropping_birth_date__reports_it_dropped() -> None:
    report = field_coverage(load_example("typical-ketamine-infusion"), CTX, _without_birth_date)
    assert [c.path for c in report if c.dropped] == ["patient.birth_date"]


def test_field_coverage__lists_items_by_index() -> None:
    paths = [c.path for c in field_coverage(load_example("typical-ketamine-infusion"), CTX)]
    assert any(p.startswith("vitals[1].") for p in paths)


def test_round_trip_differences__shared_example__none() -> None:
    assert round_trip_differences(load_example("esketamine-session"), CTX) == []
