"""The merge of EHR versions: every version it writes carries our labels and its Provenance
is a resource of the store, and nothing of another tenant comes in. (Against the real
sandbox: tests/integration/test_pull_on_sandbox.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select, update

from adapter.ingest import ingest_encounter
from adapter.store import compartment, search
from adapter.store.accept import Submission, accept
from adapter.store.ehr_provenance import LINEAGE_SYSTEM
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.schema import DONE, outbox, resources, search_index
from adapter.store.search import take_snapshot
from adapter.store.subscription_topics import EHR_CHANGE, Filter
from adapter.sync.pull.ehr_view import EhrRef
from adapter.sync.pull.merge import EhrVersion, Merger, Outcome
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from mappings.encounter.submission import map_submission
from tests.store_template import migrated_sqlite
from tests.subscription_store import queued_events, subscribe
from tests.unit.mappings.fhircheck import load_example

EHR = "http://ehr.example/fhir"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SHARED = MappingContext(namespace=DEFAULT_NAMESPACE, tenant="clinic-a")
LABELS = [
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "BH"},
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """Clinic A's pushed visit (through the identity rules: A owns its ids); the patient's
    EHR id is `p1`, an Observation's `o1`."""
    made = create_store_engine(migrated_sqlite(tmp_path / "store.db"))
    document = load_example("esketamine-session").model_dump_json(exclude_none=True)
    ingest_encounter(made, document.encode(), SHARED, clock=lambda: T0)
    with write_transaction(made) as conn:
        _set_ehr_id(conn, "clinic-a", "Patient", "p1")
        _set_ehr_id(conn, "clinic-a", "Observation", "o1")
        conn.execute(update(outbox).values(state=DONE))
    yield made
    made.dispose()


def _set_ehr_id(conn: Any, tenant: str, resource_type: str, ehr_id: str) -> None:
    pk = conn.execute(
        select(resources.c.pk)
        .where(resources.c.tenant == tenant, resources.c.resource_type == resource_type)
        .order_by(resources.c.pk)
        .limit(1)
    ).scalar_one()
    conn.execute(
        update(resources).where(resources.c.pk == pk).values(ehr_id=ehr_id, ehr_version="1")
    )


def _row(engine: Engine, tenant: str, resource_type: str, ehr_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(resources).where(
                resources.c.tenant == tenant,
                resources.c.resource_type == resource_type,
                resources.c.ehr_id == ehr_id,
            )
        ).one()


def _ehr_copy(engine: Engine, tenant: str, resource_type: str, ehr_id: str) -> dict[str, Any]:
    """Our resource as the EHR would answer it: its id, its references, no labels."""
    content: dict[str, Any] = orjson.loads(_row(engine, tenant, resource_type, ehr_id).content)
    content["id"] = ehr_id
    content["meta"] = {"versionId": "2", "lastUpdated": "2026-11-25T09:00:00Z"}
    content["subject"] = {"reference": "Patient/p1"}
    return content


def _merge(engine: Engine, tenant: str, *versions: dict[str, Any]) -> list[Outcome]:
    found = [
        EhrVersion(EhrRef(v["resourceType"], v["id"]), v["meta"]["versionId"], v) for v in versions
    ]
    with write_transaction(engine) as conn:
        counts = Merger(conn, tenant, EHR, T1).merge(found)
    return sorted(counts.elements())


def _provenances(engine: Engine, tenant: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        texts = conn.execute(
            select(resources.c.content).where(
                resources.c.tenant == tenant, resources.c.identifier_system == LINEAGE_SYSTEM
            )
        ).scalars()
        return [orjson.loads(text) for text in texts]


def _statement(ehr_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": ehr_id,
        "meta": {"versionId": "1", "lastUpdated": "2026-11-25T09:00:00Z"},
        "status": "active",
        "medicationCodeableConcept": {"text": "sertraline 50 mg"},
        "subject": {"reference": "Patient/p1"},
    }


def test_ehr_edit__new_version_labelled_and_its_provenance_a_resource(engine: Engine) -> None:
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    edited.pop("meta")
    edited["meta"] = {"versionId": "2"}  # the EHR's users dropped our labels
    edited["status"] = "amended"
    assert _merge(engine, "clinic-a", edited) == [Outcome.UPDATED]
    row = _row(engine, "clinic-a", "Observation", "o1")
    content = orjson.loads(row.content)
    assert (content["status"], content["meta"]["security"]) == ("amended", LABELS)
    (provenance,) = _provenances(engine, "clinic-a")
    reference = f"Observation/{row.logical_id}"
    assert provenance["target"] == [{"reference": f"{reference}/_history/2"}]
    assert provenance["meta"]["security"] == LABELS
    with engine.connect() as conn:
        targets = conn.execute(
            select(search_index.c.value).where(search_index.c.param == "target")
        ).scalars()
        assert reference in set(targets)
        snapshot = take_snapshot(conn, datetime.now(UTC))
        (patient,) = search.by_reference(conn, "clinic-a", [_patient_ref(engine)])
        members = compartment.rows(
            conn, compartment.everything(conn, "clinic-a", patient, snapshot, None)
        )
    assert f"Provenance/{provenance['id']}" in {m.reference for m in members}


def test_ehr_changes__raise_ehr_change_events_in_the_merge_transaction(engine: Engine) -> None:
    everything = subscribe(engine, "clinic-a", EHR_CHANGE)
    statements = subscribe(engine, "clinic-a", EHR_CHANGE, (Filter("MedicationStatement"),))
    other_patient = subscribe(engine, "clinic-a", EHR_CHANGE, (Filter(patient="someone-else"),))
    elsewhere = subscribe(engine, "clinic-b", EHR_CHANGE)
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    edited["meta"] = {"versionId": "2"}
    edited["status"] = "amended"
    _merge(engine, "clinic-a", edited, _statement("ms1"))
    found = queued_events(engine, everything)
    assert [(e.event_number, e.focus_type, e.action) for e in found] == [
        (1, "Observation", "update"),
        (2, "MedicationStatement", "create"),
    ]
    assert [e.focus_type for e in queued_events(engine, statements)] == ["MedicationStatement"]
    assert queued_events(engine, other_patient) == []
    assert queued_events(engine, elsewhere) == []


def test_ehr_edit_with_a_stricter_label__kept_stricter(engine: Engine) -> None:
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    very = {"system": LABELS[0]["system"], "code": "V"}
    other = {"system": "http://example.org/labels", "code": "X"}
    edited["meta"]["security"] = [very, other]
    edited["status"] = "amended"
    _merge(engine, "clinic-a", edited)
    content = orjson.loads(_row(engine, "clinic-a", "Observation", "o1").content)
    assert content["meta"]["security"] == [very, *LABELS[1:], other]


def test_import__ehr_created_statement__labelled_with_a_provenance(engine: Engine) -> None:
    assert _merge(engine, "clinic-a", _statement("ms1")) == [Outcome.IMPORTED]
    content = orjson.loads(_row(engine, "clinic-a", "MedicationStatement", "ms1").content)
    assert content["meta"]["security"] == LABELS
    (provenance,) = _provenances(engine, "clinic-a")
    assert provenance["target"][0]["reference"].startswith("MedicationStatement/")


def test_another_tenant_holding_a_s_patient__takes_nothing_of_it(engine: Engine) -> None:
    # Clinic B sent A's document into the shared namespace before ids had owners: it holds
    # the same identifiers, and the EHR's `p1` is recorded on its Patient too.
    sub = load_example("esketamine-session")
    ctx_b = MappingContext(namespace=DEFAULT_NAMESPACE, tenant="clinic-b")
    with write_transaction(engine) as conn:
        doc = Submission("clinic-b", "encounter", sub.encounter_id, sub.patient.mrn, "b", b"")
        accept(conn, doc, map_submission(sub, ctx_b), ctx_b, T0)
        _set_ehr_id(conn, "clinic-b", "Patient", "p1")
        _set_ehr_id(conn, "clinic-b", "Observation", "o1")
        conn.execute(update(outbox).values(state=DONE))
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    edited["status"] = "amended"
    patient = _ehr_copy(engine, "clinic-a", "Patient", "p1")
    patient.pop("subject")
    outcomes = _merge(engine, "clinic-b", edited, patient, _statement("ms2"))
    assert outcomes == [Outcome.IGNORED] * 3
    assert _provenances(engine, "clinic-b") == []
    with engine.connect() as conn:
        held = conn.execute(
            select(resources.c.resource_type).where(
                resources.c.tenant == "clinic-b", resources.c.ehr_id == "ms2"
            )
        ).all()
    assert held == []
    assert _merge(engine, "clinic-a", edited) == [Outcome.UPDATED]  # A, the owner, takes it


def _patient_ref(engine: Engine) -> str:
    row = _row(engine, "clinic-a", "Patient", "p1")
    return f"Patient/{row.logical_id}"


# ---- narratives: the EHR's own, or none, is no change; ours is made anew on a real one ----

HAPI_NARRATIVE = {
    "status": "generated",
    "div": '<div xmlns="http://www.w3.org/1999/xhtml">Observation o1, as HAPI words it</div>',
}


@pytest.mark.parametrize("text", [HAPI_NARRATIVE, None], ids=["regenerated", "dropped"])
def test_ehr_copy_with_its_own_narrative_or_none__seen_without_a_new_version(
    engine: Engine, text: dict[str, str] | None
) -> None:
    with write_transaction(engine) as conn:  # every reference of o1 names an EHR resource
        conn.execute(
            update(resources)
            .where(resources.c.ehr_id.is_(None))
            .values(ehr_id=resources.c.logical_id, ehr_version="1")
        )
    copy = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    copy.pop("text")
    if text is not None:
        copy["text"] = text
    before = _row(engine, "clinic-a", "Observation", "o1")
    assert _merge(engine, "clinic-a", copy) == [Outcome.SEEN]
    after = _row(engine, "clinic-a", "Observation", "o1")
    assert (after.version, after.content) == (before.version, before.content)


def test_ehr_edit_carrying_our_old_narrative__stored_with_one_that_says_the_edit(
    engine: Engine,
) -> None:
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    assert "final" in edited["text"]["div"]
    edited["status"] = "amended"
    assert _merge(engine, "clinic-a", edited) == [Outcome.UPDATED]
    text = orjson.loads(_row(engine, "clinic-a", "Observation", "o1").content)["text"]
    assert text["status"] == "generated"
    assert "amended" in text["div"]
    assert "final" not in text["div"]


def test_ehr_edit_with_a_narrative_a_person_wrote__kept(engine: Engine) -> None:
    edited = _ehr_copy(engine, "clinic-a", "Observation", "o1")
    written = {"status": "additional", "div": HAPI_NARRATIVE["div"]}
    edited["text"], edited["status"] = written, "amended"
    _merge(engine, "clinic-a", edited)
    assert orjson.loads(_row(engine, "clinic-a", "Observation", "o1").content)["text"] == written


def test_import__ehr_created_without_narrative__gets_a_generated_one(engine: Engine) -> None:
    _merge(engine, "clinic-a", _statement("ms1"))
    content = orjson.loads(_row(engine, "clinic-a", "MedicationStatement", "ms1").content)
    assert content["text"]["status"] == "generated"
    assert "sertraline 50 mg" in content["text"]["div"]
