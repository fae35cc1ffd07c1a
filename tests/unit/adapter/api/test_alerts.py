"""Alerts through the clinic API: the protocol's refusals (422) and DetectedIssues, Flags
that a newer assessment of the patient ends, and `alerts` on `GET /clinic/patients/{mrn}`,
each tenant with its own protocol and its own patients' Flags."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter.store.schema import outbox
from mappings.common import identity
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.unit.adapter.api.conftest import (
    bearer,
    example,
    post_encounter,
    two_tenants,
)

KEY_A = "alerts-of-clinic-a-0123456789abcdef"
KEY_B = "alerts-of-clinic-b-0123456789abcdef"
SCOPES = ["clinic/*.write", "clinic/*.read", "system/*.rs"]
CTX_A = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/clinic-a", tenant="clinic-a")
MRN = "MRN-004211"
NO_RISK: dict[str, bool] = {
    "wish_to_be_dead": False,
    "non_specific_active_thoughts": False,
    "active_ideation_with_method": False,
    "active_ideation_with_intent": False,
    "active_ideation_with_plan": False,
    "suicidal_behavior_past_3_months": False,
}
LEVEL_ANSWER = {
    "low": "wish_to_be_dead",
    "moderate": "active_ideation_with_method",
    "high": "active_ideation_with_plan",
}


def _client(tmp_path: Path, **overrides: Any) -> Iterator[TestClient]:
    yield from two_tenants(tmp_path, KEY_A, KEY_B, SCOPES, **overrides)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _screening(eid: str, at: str, level: str | None, item9: int = 0) -> dict[str, Any]:
    """An encounter of the typical example's patient with a screening only, at `at`."""
    doc = example("typical-ketamine-infusion")
    for name in ("infusion", "vitals", "medication_review"):
        doc.pop(name)
    doc |= {"encounter_id": eid, "start": at, "end": None}
    doc.pop("end")
    screening = doc["intake_screening"]
    cssrs = dict(NO_RISK)
    if level is not None:
        cssrs[LEVEL_ANSWER[level]] = True
    screening |= {"completed_at": at, "cssrs": cssrs, "phq9": [1] * 8 + [item9]}
    screening.pop("last_oral_intake_at")
    return doc


def _sent(client: TestClient, doc: dict[str, Any], key: str = KEY_A) -> None:
    reply = post_encounter(client, doc, key=key)
    assert reply.status_code in (200, 201), reply.text


def _alerts(client: TestClient, key: str = KEY_A) -> list[dict[str, Any]]:
    reply = client.get(f"/clinic/patients/{MRN}", headers=bearer(key))
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["alerts"]
    return found


def _waiting_for_the_ehr(client: TestClient) -> set[str]:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.resource_keys).where(outbox.c.tenant == "clinic-a"))
        return {key for (keys,) in rows for key in keys}


def _flag(client: TestClient, eid: str, part: str) -> dict[str, Any]:
    key = f"{eid}~SCR-88120"
    ident = identity.identity(CTX_A, "Flag", "intake", key, part)
    reply = client.get(f"/fhir/Flag/{ident.id}", headers=bearer(KEY_A))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


# ---------------------------------------------------------------- alerts with a life


def test_second_screening__ends_the_first_risk_flag__its_own_level_carries_on(
    client: TestClient,
) -> None:
    _sent(client, _screening("E-1", "2026-11-20T08:40:00-05:00", "high"))
    assert [a["code"] for a in _alerts(client)] == ["flag-suicide-risk-high"]
    reply = post_encounter(client, _screening("E-2", "2026-11-27T08:40:00-05:00", "low"), KEY_A)
    assert reply.status_code == 201
    first = _flag(client, "E-1", "suicide-risk-high")
    # The ended Flag goes to the EHR with the second screening's push (not its receipt's).
    assert f"Flag/{first['id']}" not in reply.json()["updated"]
    assert f"Flag/{first['id']}" in _waiting_for_the_ehr(client)
    assert first["status"] == "inactive"
    assert first["period"] == {
        "start": "2026-11-20T08:40:00-05:00",
        "end": "2026-11-27T08:40:00-05:00",
    }
    assert first["meta"]["versionId"] == "2"
    alerts = _alerts(client)
    assert [a["code"] for a in alerts] == ["flag-suicide-risk-low"]
    assert alerts[0]["raised_at"] == "2026-11-27T08:40:00-05:00"
    assert alerts[0]["source"] == "clinic"


def test_second_screening_without_risk__ends_the_flag__no_alert_left(client: TestClient) -> None:
    _sent(client, _screening("E-1", "2026-11-20T08:40:00-05:00", "moderate", item9=2))
    assert {a["code"] for a in _alerts(client)} == {
        "flag-suicide-risk-moderate",
        "flag-phq9-item9-positive",
    }
    _sent(client, _screening("E-2", "2026-11-27T08:40:00-05:00", None))
    assert _alerts(client) == []
    assert _flag(client, "E-1", "phq9-item9-positive")["status"] == "inactive"


def test_first_screening_sent_again__stays_ended(client: TestClient) -> None:
    first = _screening("E-1", "2026-11-20T08:40:00-05:00", "high")
    _sent(client, first)
    _sent(client, _screening("E-2", "2026-11-27T08:40:00-05:00", None))
    reply = post_encounter(client, copy.deepcopy(first), key=KEY_A)
    assert reply.status_code == 200
    assert reply.json()["updated"] == []
    assert _flag(client, "E-1", "suicide-risk-high")["status"] == "inactive"
    assert _alerts(client) == []


def test_older_screening_sent_late__its_flag_ends_at_the_newer_one(client: TestClient) -> None:
    _sent(client, _screening("E-2", "2026-11-27T08:40:00-05:00", "low"))
    _sent(client, _screening("E-1", "2026-11-20T08:40:00-05:00", "high"))
    late = _flag(client, "E-1", "suicide-risk-high")
    assert late["status"] == "inactive"
    assert late["period"]["end"] == "2026-11-27T08:40:00-05:00"
    assert [a["code"] for a in _alerts(client)] == ["flag-suicide-risk-low"]


def test_screening_of_another_tenant__never_ends_this_tenants_flag(client: TestClient) -> None:
    _sent(client, _screening("E-1", "2026-11-20T08:40:00-05:00", "high"))
    _sent(client, _screening("E-2", "2026-11-27T08:40:00-05:00", None), key=KEY_B)
    assert [a["code"] for a in _alerts(client)] == ["flag-suicide-risk-high"]
    assert _alerts(client, KEY_B) == []


def test_critical_vital_flag__ended_by_the_next_reading_of_that_measure(
    client: TestClient,
) -> None:
    _sent(client, example("typical-ketamine-infusion"))
    reading = {
        "encounter_id": "ENC-2026-1120-001",
        "patient_mrn": MRN,
        "vitals_id": "VS-90",
        "taken_at": "2026-11-20T09:40:00-05:00",
        "phase": "intra_infusion",
        "spo2": {"value": 86, "unit": "%"},
    }
    reply = client.post("/clinic/vitals", json=reading, headers=bearer(KEY_A))
    assert reply.status_code == 201, reply.text
    assert "flag-critical-oxygen-saturation" in [a["code"] for a in _alerts(client)]
    later = reading | {"vitals_id": "VS-91", "taken_at": "2026-11-20T09:45:00-05:00"}
    later["spo2"] = {"value": 95, "unit": "%"}
    reply = client.post("/clinic/vitals", json=later, headers=bearer(KEY_A))
    assert reply.status_code == 201, reply.text
    assert "flag-critical-oxygen-saturation" not in [a["code"] for a in _alerts(client)]


# ---------------------------------------------------------------- the protocol's two severities


def _with_infusion(**changes: Any) -> dict[str, Any]:
    doc = example("typical-ketamine-infusion")
    doc["infusion"] |= changes
    return doc


def test_dose_above_hard_ceiling__422_naming_field_and_rule(client: TestClient) -> None:
    reply = post_encounter(client, _with_infusion(dose_mg_per_kg=5, total_dose_mg=340), key=KEY_A)
    assert reply.status_code == 422
    errors = {e["field"]: e["message"] for e in reply.json()["errors"]}
    assert "doses.ketamine.intravenous.hard_max_mg_per_kg" in errors["infusion.dose_mg_per_kg"]
    assert "doses.ketamine.intravenous.hard_max_total_mg" in errors["infusion.total_dose_mg"]
    assert client.get(f"/clinic/patients/{MRN}", headers=bearer(KEY_A)).status_code == 404


def test_esketamine_200_mg__422(client: TestClient) -> None:
    doc = example("esketamine-session")
    doc["infusion"]["total_dose_mg"] = 200
    reply = post_encounter(client, doc, key=KEY_A)
    assert reply.status_code == 422
    (error,) = reply.json()["errors"]
    assert error["field"] == "infusion.total_dose_mg"
    assert "one of 56, 84 mg" in error["message"]


def test_dose_above_usual__accepted_with_a_detected_issue_on_fhir(client: TestClient) -> None:
    _sent(client, _with_infusion(dose_mg_per_kg=1.5, total_dose_mg=102))
    issues = [a for a in _alerts(client) if a["code"] == "DOSEH"]
    assert len(issues) == 2  # per kg above 1.0, total above 100 mg
    for issue in issues:
        assert issue["severity"] == "moderate"
        assert "usual maximum" in issue["detail"]
        reply = client.get(f"/fhir/{issue['fhir']}", headers=bearer(KEY_A))
        assert reply.status_code == 200
        assert reply.json()["meta"]["security"]


def test_tenant_protocol_file__applies_to_that_tenant_only(tmp_path: Path) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "clinic-a.toml").write_text(
        "[doses.esketamine.intranasal]\nallowed_total_mg = [28, 56, 84]\n"
        'source = "clinic: 28 mg for patients over 65 (label, outside the US)"\n'
    )
    doc = example("esketamine-session")
    doc["infusion"]["total_dose_mg"] = 28
    for client in _client(tmp_path / "run", protocol_dir=str(folder)):
        assert post_encounter(client, doc, key=KEY_A).status_code == 201
        assert post_encounter(client, json.loads(json.dumps(doc)), key=KEY_B).status_code == 422


def test_mania_flag__ended_by_the_next_screening_which_keeps_its_own(client: TestClient) -> None:
    first = _screening("E-1", "2026-11-20T08:40:00-05:00", None)
    first["intake_screening"]["bipolar_disorder"] = True
    _sent(client, first)
    assert [a["code"] for a in _alerts(client)] == ["flag-mania-risk"]
    second = _screening("E-2", "2026-11-27T08:40:00-05:00", None)
    second["intake_screening"]["bipolar_disorder"] = True
    _sent(client, second)
    alerts = _alerts(client)
    assert [(a["code"], a["raised_at"]) for a in alerts] == [
        ("flag-mania-risk", "2026-11-27T08:40:00-05:00")
    ]
    assert _flag(client, "E-1", "mania-risk")["period"]["end"] == "2026-11-27T08:40:00-05:00"
    third = _screening("E-3", "2026-12-04T08:40:00-05:00", None)
    _sent(client, third)
    assert _alerts(client) == []
