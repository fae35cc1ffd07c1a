"""The EHR's medications screened too, against the real sandbox: a pull that brings an MAOI
the EHR added for one of our patients raises a DetectedIssue implicating the EHR's resource
(and pushes it); stopping it on the EHR resolves the issue; a clinic statement the EHR
stops resolves the review's own interaction issue."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import Engine, select

from adapter.ehr.client import FhirClient
from adapter.ingest import ingest_encounter
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import resources
from adapter.sync.patient_view import patient_view
from adapter.sync.pull.puller import Puller
from adapter.sync.push.worker import Backoff, PushWorker
from mappings.common import identity
from mappings.context import MappingContext
from mappings.medication_review import SCREEN_KIND, refs
from tests.integration.support import FHIR_JSON, ehr_edit, encounter

pytestmark = pytest.mark.integration

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_store_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ctx() -> MappingContext:
    tag = uuid.uuid4().hex[:10]
    return MappingContext(namespace=f"https://fhir.screen-{tag}.example", tenant=f"screen-{tag}")


def _push(engine: Engine, base: str, ctx: MappingContext) -> None:
    worker = PushWorker(
        engine,
        FhirClient(base, timeout_seconds=60),
        owner="it-push",
        tenant=ctx.tenant,
        backoff=Backoff(0.05),
    )
    worker.drain()


def _pull(engine: Engine, base: str, ctx: MappingContext) -> None:
    Puller(engine, FhirClient(base, timeout_seconds=60), owner="it-pull").pull(ctx.tenant)


def _rows(engine: Engine, ctx: MappingContext, resource_type: str, system: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(resources).where(
            resources.c.tenant == ctx.tenant,
            resources.c.resource_type == resource_type,
            resources.c.identifier_system == system,
        )
        return list(conn.execute(query).all())


def _alerts(engine: Engine, ctx: MappingContext, mrn: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        view = patient_view(conn, ctx, mrn)
    assert view is not None
    found: list[dict[str, Any]] = view["alerts"]  # type: ignore[assignment]
    return found


def _phenelzine(patient_ehr_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "8123", "display": "phenelzine"}],
            "text": "phenelzine 15 mg tablet",
        },
        "subject": {"reference": f"Patient/{patient_ehr_id}"},
        "dateAsserted": "2026-11-24T10:00:00Z",
    }


def _ehr_create(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(
        f"{base}/{resource['resourceType']}",
        data=orjson.dumps(resource),
        headers=FHIR_JSON,
        timeout=30,
    )
    reply.raise_for_status()
    return dict(reply.json())


def _stopped(statement: dict[str, Any]) -> None:
    statement["status"] = "stopped"


def test_pull__ehr_adds_an_maoi__detected_issue__stopping_it_resolves_it(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(0)
    ingest_encounter(store, sub.model_dump_json(exclude_none=True).encode(), ctx)
    _push(store, fhir_base_url, ctx)
    patient = identity.patient(ctx, sub.patient.mrn)
    (patient_row,) = _rows(store, ctx, "Patient", patient.system)
    added = _ehr_create(fhir_base_url, _phenelzine(patient_row.ehr_id))

    _pull(store, fhir_base_url, ctx)

    screen = identity.system(ctx, SCREEN_KIND)
    (issue_row,) = _rows(store, ctx, "DetectedIssue", screen)
    issue = orjson.loads(issue_row.content)
    (copy,) = [
        r
        for r in _rows(store, ctx, "MedicationStatement", fhir_base_url)
        if r.ehr_id == added["id"]
    ]
    assert issue["implicated"] == [{"reference": f"MedicationStatement/{copy.logical_id}"}]
    assert issue["severity"] == "high"
    assert [c["code"] for c in issue["code"]["coding"]] == ["DRG", "interaction-maois"]
    assert "mitigation" not in issue
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 3  # the review's two classes, and the EHR's MAOI

    # Pushed like every clinic resource: the EHR's copy names the EHR's statement.
    _push(store, fhir_base_url, ctx)
    on_ehr = requests.get(
        f"{fhir_base_url}/DetectedIssue",
        params={"identifier": f"{screen}|"},
        headers=FHIR_JSON,
        timeout=30,
    ).json()
    (entry,) = on_ehr["entry"]
    assert entry["resource"]["implicated"] == [{"reference": f"MedicationStatement/{added['id']}"}]

    ehr_edit(fhir_base_url, "MedicationStatement", added["id"], _stopped)
    _pull(store, fhir_base_url, ctx)

    (issue_row,) = _rows(store, ctx, "DetectedIssue", screen)
    resolved = orjson.loads(issue_row.content)
    (mitigation,) = resolved["mitigation"]
    assert mitigation["action"]["coding"][0]["code"] == "13"
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 2
    _push(store, fhir_base_url, ctx)
    again = requests.get(
        f"{fhir_base_url}/DetectedIssue",
        params={"identifier": f"{screen}|"},
        headers=FHIR_JSON,
        timeout=30,
    ).json()
    assert again["entry"][0]["resource"]["mitigation"][0]["action"]["coding"][0]["code"] == "13"


def test_pull__ehr_stops_the_clinics_sertraline__review_issue_resolved(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(1)
    ingest_encounter(store, sub.model_dump_json(exclude_none=True).encode(), ctx)
    _push(store, fhir_base_url, ctx)
    assert sub.medication_review is not None
    review_key = f"{sub.encounter_id}~{sub.medication_review.review_id}"
    sertraline = refs.statement(ctx, review_key, 1)  # the typical review's first medication
    (statement_row,) = [
        r
        for r in _rows(store, ctx, "MedicationStatement", sertraline.system)
        if r.identifier_value == sertraline.value
    ]

    ehr_edit(fhir_base_url, "MedicationStatement", statement_row.ehr_id, _stopped)
    _pull(store, fhir_base_url, ctx)

    issues = {
        r.identifier_value.rsplit("~", 1)[-1]: orjson.loads(r.content)
        for r in _rows(store, ctx, "DetectedIssue", identity.system(ctx, refs.INTERACTION_KIND))
    }
    assert "mitigation" in issues["ssri-snri"]
    assert "mitigation" not in issues["cns-depressants"]  # lorazepam is still taken
    codes = [a["code"] for a in _alerts(store, ctx, sub.patient.mrn)]
    assert codes.count("DRG") == 1
