"""`mappings.alerts.settle`: a Flag lives until its family is next assessed for the patient."""

from __future__ import annotations

from typing import Any, cast

from mappings.alerts import assessments, flag_family, settle
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import VitalsObservation
from mappings.jsontypes import Resource
from mappings.vitals import map_vitals

CTX = MappingContext(namespace="https://fhir.test-clinic.example")
SCOPE = EncounterScope("ENC-1", "MRN-1")
Res = dict[str, Any]


def _reading(vid: str, at: str, spo2: float) -> VitalsObservation:
    return VitalsObservation.model_validate(
        {
            "vitals_id": vid,
            "taken_at": at,
            "phase": "intra_infusion",
            "spo2": {"value": spo2, "unit": "%"},
        }
    )


def _flags(resources: list[Resource]) -> list[Res]:
    return [cast(Res, r) for r in resources if r["resourceType"] == "Flag"]


def test_settle__critical_then_normal_in_one_document__flag_ends_at_the_normal_reading() -> None:
    mapped = map_vitals(
        [
            _reading("VS-1", "2026-11-20T09:30:00Z", 86),
            _reading("VS-2", "2026-11-20T09:35:00Z", 97),
        ],
        SCOPE,
        CTX,
    )
    (flag,) = _flags(settle(mapped, [], CTX).document)
    assert flag["status"] == "inactive"
    assert "inactive" in flag["text"]["div"]  # the narrative says what it says now
    assert flag["period"] == {"start": "2026-11-20T09:30:00Z", "end": "2026-11-20T09:35:00Z"}


def test_settle__two_critical_readings__the_newer_flag_stays_active() -> None:
    mapped = map_vitals(
        [
            _reading("VS-1", "2026-11-20T09:30:00Z", 86),
            _reading("VS-2", "2026-11-20T09:35:00Z", 85),
        ],
        SCOPE,
        CTX,
    )
    flags = _flags(settle(mapped, [], CTX).document)
    assert [f["status"] for f in flags] == ["inactive", "active"]


def test_settle__stored_active_flag__ended_by_a_later_reading_only() -> None:
    stored = map_vitals([_reading("VS-1", "2026-11-20T09:30:00Z", 86)], SCOPE, CTX)
    earlier = map_vitals([_reading("VS-0", "2026-11-20T09:25:00Z", 97)], SCOPE, CTX)
    assert settle(earlier, stored, CTX).ended == []
    same_time = map_vitals([_reading("VS-9", "2026-11-20T09:30:00Z", 97)], SCOPE, CTX)
    assert settle(same_time, stored, CTX).ended == []
    later = map_vitals([_reading("VS-2", "2026-11-20T09:40:00Z", 97)], SCOPE, CTX)
    (ended,) = cast(list[Res], settle(later, stored, CTX).ended)
    assert (ended["status"], ended["period"]["end"]) == ("inactive", "2026-11-20T09:40:00Z")


def test_settle__another_measure__does_not_end_the_flag() -> None:
    stored = map_vitals([_reading("VS-1", "2026-11-20T09:30:00Z", 86)], SCOPE, CTX)
    heart = VitalsObservation.model_validate(
        {
            "vitals_id": "VS-2",
            "taken_at": "2026-11-20T09:40:00Z",
            "phase": "intra_infusion",
            "heart_rate": {"value": 80, "unit": "/min"},
        }
    )
    assert settle(map_vitals([heart], SCOPE, CTX), stored, CTX).ended == []


def test_settle__a_flag_not_ours__never_touched() -> None:
    ehr_flag: Resource = {
        "resourceType": "Flag",
        "id": "ehr-1",
        "status": "active",
        "code": {"text": "Fall risk"},
        "period": {"start": "2026-01-01T00:00:00Z"},
    }
    later = map_vitals([_reading("VS-2", "2026-11-20T09:40:00Z", 97)], SCOPE, CTX)
    assert flag_family(ehr_flag, CTX) is None
    assert settle(later, [ehr_flag], CTX).ended == []


def test_assessments__a_reading__assesses_its_measure() -> None:
    found = assessments(map_vitals([_reading("VS-1", "2026-11-20T09:30:00Z", 97)], SCOPE, CTX), CTX)
    assert [m.text for m in found["critical-oxygen-saturation"]] == ["2026-11-20T09:30:00Z"]
