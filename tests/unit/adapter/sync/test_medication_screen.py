"""The pull's medication screen on a store: per tenant, per patient, resolved not deleted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from adapter.api.app import create_app
from adapter.store.engine import write_transaction
from adapter.store.schema import resources
from adapter.sync.pull.medication_screen import screen_patients
from tests.unit.adapter.api.conftest import example, post_encounter, running, settings_for
from tests.unit.adapter.api.pulled import imported

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MRN = "MRN-004211"
AT = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
WRITER_A = "writer-of-clinic-a-0123456789abcdef"
WRITER_B = "wildcard-of-clinic-b-0123456789abcdef"


def _phenelzine(status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "8123"}]},
        "subject": {"reference": "Patient/x"},
    }


def _both_tenants_hold_the_patient(tmp_path: Path) -> Engine:
    app = create_app(settings_for(tmp_path))
    for client in running(app):
        for key in (WRITER_A, WRITER_B):
            assert (
                post_encounter(client, example("typical-ketamine-infusion"), key).status_code == 201
            )
    engine: Engine = app.state.engine
    return engine


def _screen_issues(engine: Engine, tenant: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.content).where(
                resources.c.tenant == tenant,
                resources.c.resource_type == "DetectedIssue",
                resources.c.identifier_system.like("%/sid/ehr-medication-interaction"),
            )
        )
        return [json.loads(content) for (content,) in rows]


def test_screen__one_tenants_ehr_maoi__never_screened_into_another_tenant(tmp_path: Path) -> None:
    engine = _both_tenants_hold_the_patient(tmp_path)
    imported(engine, "clinic-b", MRN, _phenelzine(), "ms-1", AT)
    with write_transaction(engine) as conn:
        assert screen_patients(conn, "clinic-a", [MRN], AT) == 0
        assert screen_patients(conn, "clinic-b", [MRN], AT) == 1
    assert _screen_issues(engine, "clinic-a") == []
    (issue,) = _screen_issues(engine, "clinic-b")
    assert issue["severity"] == "high"


def test_screen__same_list_again__nothing_written(tmp_path: Path) -> None:
    engine = _both_tenants_hold_the_patient(tmp_path)
    imported(engine, "clinic-a", MRN, _phenelzine(), "ms-1", AT)
    with write_transaction(engine) as conn:
        assert screen_patients(conn, "clinic-a", [MRN], AT) == 1
        assert screen_patients(conn, "clinic-a", [MRN], AT) == 0
