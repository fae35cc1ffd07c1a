"""Migration 0007 on a store the older code wrote: what it held keeps its identifiers, and
the store then follows the new rules. (With the EHR side too: tests/integration/
test_tenants_on_sandbox.py.)"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select

from adapter.api.clinic.status import submission_status
from adapter.errors import IdConflict
from adapter.ingest import ingest_encounter
from adapter.store.ehr_provenance import LINEAGE_SYSTEM
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import current_revision, head_revision, upgrade
from adapter.store.schema import (
    audit,
    identifier_owners,
    legacy_records,
    resource_versions,
    resources,
    search_index,
    submissions,
    tenants,
)
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.unit.adapter.store.legacy_store import (
    accept_0006,
    audit_0006,
    ehr_version_0006,
    migrated_to_0006,
    old_context,
)
from tests.unit.mappings.fhircheck import load_example

NS = "https://fhir.example-clinic.org"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty store of its own (on PostgreSQL, a database of its own): migrated from 0006."""
    if request.param == "sqlite":
        made = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
        yield made
        made.dispose()
        return
    server = request.getfixturevalue("postgres_url")
    name = f"mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    made = create_store_engine(sa.make_url(server).set(database=name).render_as_string(False))
    try:
        yield made
    finally:
        made.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


def _typical() -> EncounterSubmission:
    return load_example("typical-ketamine-infusion")


class Older(NamedTuple):
    edited: str
    """The Observation the pull edited for clinic A."""
    keys: list[str]
    """Clinic A's resources."""


def _older_store(engine: Engine) -> Older:
    """Clinics A and B in the shared namespace (B sent A's example too: the collision the
    older default allowed), C in a namespace of its own; an EHR edit pulled for A; A's
    dead letter in the audit trail."""
    migrated_to_0006(engine)
    sub = _typical()
    with write_transaction(engine) as conn:
        a_outbox, a_keys = accept_0006(conn, sub, old_context(sub, NS, "clinic-a"), T0)
        accept_0006(conn, sub, old_context(sub, NS, "clinic-b"), T0)
        accept_0006(conn, sub, old_context(sub, f"{NS}/clinic-c", "clinic-c"), T0)
        edited = next(k for k in a_keys if k.startswith("Observation/"))
        content = {"resourceType": "Observation", "id": edited.split("/")[1], "status": "amended"}
        provenance = {
            "resourceType": "Provenance",
            "target": [{"reference": f"{edited}/_history/2"}],
        }
        ehr_version_0006(conn, edited, "clinic-a", json.dumps(content), json.dumps(provenance), T0)
        conn.execute(
            sa.insert(audit_0006).values(
                at=T0, tenant="clinic-a", actor="w", action="push-dead",
                object=f"outbox/{a_outbox}", count=3, outcome="EhrRejected",
            )
        )  # fmt: skip
    return Older(edited, a_keys)


def test_0007__fixes_each_tenant_s_namespace_from_what_it_wrote(engine: Engine) -> None:
    _older_store(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        pinned = dict(conn.execute(select(tenants.c.tenant, tenants.c.namespace)).all())
    assert pinned == {"clinic-a": NS, "clinic-b": NS, "clinic-c": f"{NS}/clinic-c"}


def test_0007__records_held__keep_their_identifiers(engine: Engine) -> None:
    _older_store(engine)
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(legacy_records.c.field, legacy_records.c.record_id).where(
                legacy_records.c.tenant == "clinic-a",
                legacy_records.c.encounter_key == "ENC-2026-1120-001",
            )
        ).all()
    assert sorted(rows) == sorted(
        [("screening_id", "SCR-88120"), ("procedure_id", "INF-55031"), ("review_id", "MR-3301")]
        + [("vitals_id", f"VS-{n}") for n in range(1, 5)]
    )


def test_0007__resend_after__same_identifiers_nothing_new(engine: Engine) -> None:
    _older_store(engine)
    upgrade(engine)
    # The settings now say per-tenant: the store's fixed namespace wins for clinic-a.
    ctx = MappingContext(namespace=f"{NS}/clinic-a", tenant="clinic-a")
    document = _typical().model_dump_json(exclude_none=True).encode()
    result = ingest_encounter(engine, document, ctx, clock=lambda: LATER).result
    assert result.created == []
    assert result.outbox_id is None or not [k for k in result.updated if "Patient" in k]


def test_0007__new_visit_reusing_record_ids__new_identifiers_beside_the_old(
    engine: Engine,
) -> None:
    stored = _older_store(engine)
    upgrade(engine)
    ctx = MappingContext(namespace=f"{NS}/clinic-a", tenant="clinic-a")
    second = _typical().model_copy(update={"encounter_id": "ENC-2026-1127-002"})
    document = second.model_dump_json(exclude_none=True).encode()
    result = ingest_encounter(engine, document, ctx, clock=lambda: LATER).result
    observations = [k for k in result.created if k.startswith("Observation/")]
    assert observations
    assert not set(observations) & set(stored.keys)
    assert result.deleted == []


def test_0007__identifiers_two_tenants_shared__belong_to_the_first(engine: Engine) -> None:
    _older_store(engine)
    upgrade(engine)
    with engine.connect() as conn:
        owners: dict[str, int] = dict(
            conn.execute(
                select(identifier_owners.c.tenant, sa.func.count()).group_by(
                    identifier_owners.c.tenant
                )
            ).all()
        )
    assert owners["clinic-b"] == 1  # its clinic Organization: all else was A's first
    assert owners["clinic-a"] == owners["clinic-c"]
    ctx = MappingContext(namespace=NS, tenant="clinic-b")
    document = _typical().model_dump_json(exclude_none=True).encode()
    with pytest.raises(IdConflict) as refused:
        ingest_encounter(engine, document, ctx, clock=lambda: LATER)
    assert {r.field for r in refused.value.refusals} >= {"patient.mrn", "encounter_id"}


def test_0007__status_urls_handed_out_keep_working_audit_ids_opaque(engine: Engine) -> None:
    _older_store(engine)
    upgrade(engine)
    with engine.connect() as conn:
        numbers = conn.execute(
            select(submissions.c.id, submissions.c.public_id).where(
                submissions.c.tenant == "clinic-a"
            )
        ).all()
        (number, public), *_ = numbers
        assert public == str(number)
        assert submission_status(conn, "clinic-a", str(number)) is not None
        assert submission_status(conn, "clinic-b", str(number)) is None
        (event,) = conn.execute(select(audit.c.public_id, audit.c.object)).all()
    assert re.fullmatch("[0-9a-f]{32}", event.public_id)
    assert event.object == f"Submission/{public}"


def test_0007__pulled_versions__labelled_and_their_provenance_a_resource(engine: Engine) -> None:
    stored = _older_store(engine)
    upgrade(engine)
    edited = stored.edited
    logical_id = edited.split("/")[1]
    with engine.connect() as conn:
        current = conn.execute(
            select(resources.c.content).where(
                resources.c.tenant == "clinic-a", resources.c.logical_id == logical_id
            )
        ).scalar_one()
        version = conn.execute(
            select(resource_versions.c.content)
            .join(resources, resources.c.pk == resource_versions.c.resource_pk)
            .where(resources.c.logical_id == logical_id, resource_versions.c.source == "ehr")
        ).scalar_one()
        provenance = conn.execute(
            select(resources.c.content, resources.c.patient_key).where(
                resources.c.identifier_system == LINEAGE_SYSTEM
            )
        ).one()
        targets = (
            conn.execute(
                select(search_index.c.value).where(
                    search_index.c.param == "target", search_index.c.tenant == "clinic-a"
                )
            )
            .scalars()
            .all()
        )
    for text in (current, version, provenance.content):
        labels = orjson.loads(text)["meta"]["security"]
        assert {"system": CONFIDENTIALITY, "code": "R"} in labels
    assert orjson.loads(current)["status"] == "amended"
    assert provenance.patient_key == "MRN-004211"
    assert edited in targets
