"""The pull against the real sandbox: EHR-side edits, creations and deletions come back once.

Each test maps its encounters under a namespace and a tenant of its own, and edits the
sandbox as an EHR user would (plain REST calls), so tests never see each other's changes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import NoResultFound

from adapter.ehr.client import FhirClient
from adapter.store import outbox as box
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.schema import OPEN, pull_conflicts, resource_versions, resources, sync_state
from adapter.sync.patient_view import patient_view
from adapter.sync.pull.conflicts import list_conflicts, resolve
from adapter.sync.pull.merge import Outcome
from adapter.sync.reconcile.report import plan, reconcile_tenant
from mappings.common.builders import security_labels
from mappings.common.people import unmap_patient
from mappings.context import MappingContext, SecurityLabels
from tests.integration.support import (
    FHIR_JSON,
    ON_BOTH_STORES,
    ehr_create,
    ehr_edit,
    ehr_heart_rates,
    encounter,
    ingest,
    puller,
    push,
    pusher,
    set_phone,
    tenant_context,
)
from tests.integration.test_clinic_api import serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SERVICE_KEY = f"pull-it-{uuid.uuid4().hex}"


@pytest.fixture
def ctx() -> MappingContext:
    return tenant_context("pull")


def _row(engine: Engine, ctx: MappingContext, resource_type: str, **where: str) -> Any:
    with engine.connect() as conn:
        query = select(resources).where(
            resources.c.tenant == ctx.tenant, resources.c.resource_type == resource_type
        )
        for column, value in where.items():
            query = query.where(resources.c[column] == value)
        return conn.execute(query).one()


def _versions(engine: Engine, pk: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(resource_versions)
                .where(resource_versions.c.resource_pk == pk)
                .order_by(resource_versions.c.version)
            ).all()
        )


def _version_count(engine: Engine, ctx: MappingContext) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(resource_versions)
                .join(resources, resources.c.pk == resource_versions.c.resource_pk)
                .where(resources.c.tenant == ctx.tenant)
            ).scalar_one()
        )


def _assert_reconciled(engine: Engine, base: str, ctx: MappingContext) -> None:
    """`adapter reconcile`'s comparison finds the store and the EHR in agreement."""
    with engine.connect() as conn:
        work = plan(conn, ctx.tenant)
    with FhirClient(base, timeout_seconds=60) as client:
        found = reconcile_tenant(engine, client, work)
    assert found.differences == []


def _statement(patient_ehr_id: str, rxnorm: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": name}],
            "text": name,
        },
        "subject": {"reference": f"Patient/{patient_ehr_id}"},
        "dosage": [{"text": "50 mg once daily"}],
    }


@ON_BOTH_STORES
def test_pull__phone_changed_and_statement_added_on_the_ehr__both_in_the_store(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(0)
    ingest(store, sub, ctx)
    push(store, fhir_base_url, ctx.tenant)
    patient = _row(store, ctx, "Patient")
    ehr_edit(fhir_base_url, "Patient", patient.ehr_id, set_phone("+1 555 0199"))
    added = ehr_create(fhir_base_url, _statement(patient.ehr_id, "312938", "sertraline 50 MG"))

    summary = puller(store, fhir_base_url).pull(ctx.tenant)

    assert summary.counts[Outcome.UPDATED] == 1
    assert summary.counts[Outcome.IMPORTED] == 1
    assert not summary.failed
    now = _row(store, ctx, "Patient")
    assert now.version == patient.version + 1
    assert now.ehr_version == "2"
    record = unmap_patient([orjson.loads(now.content)], sub.patient.mrn, ctx)
    assert record is not None
    assert record.phone == "+1 555 0199"
    assert record.given_name == sub.patient.given_name  # the rest stays as it was
    latest = _versions(store, now.pk)[-1]
    assert latest.source == "ehr"
    provenance = orjson.loads(latest.provenance)
    assert provenance["resourceType"] == "Provenance"
    assert provenance["target"] == [
        {"reference": f"Patient/{now.logical_id}/_history/{now.version}"}
    ]
    what = provenance["entity"][0]["what"]["reference"]
    assert what == f"{fhir_base_url}/Patient/{patient.ehr_id}/_history/2"

    imported = _row(store, ctx, "MedicationStatement", ehr_id=added["id"])
    assert imported.patient_key == sub.patient.mrn
    assert imported.identifier_system == fhir_base_url
    content = orjson.loads(imported.content)
    assert content["subject"]["reference"] == f"Patient/{patient.logical_id}"
    assert content["id"] == imported.logical_id
    assert content["meta"] == {"security": security_labels(SecurityLabels())}  # ours, added
    assert [v.source for v in _versions(store, imported.pk)] == ["ehr"]

    with store.connect() as conn:
        view: Any = patient_view(conn, ctx, sub.patient.mrn)
    assert view is not None
    assert view["patient"]["phone"] == "+1 555 0199"
    assert view["patient"]["source"] == "ehr"
    from_ehr = [m for m in view["medications"] if m["source"] == "ehr"]
    assert [(m["name"], m["rxnorm"]) for m in from_ehr] == [("sertraline 50 MG", "312938")]
    assert {m["source"] for m in view["medications"]} == {"clinic", "ehr"}
    # The EHR's sertraline (an SSRI) was screened: an interaction issue, queued for the EHR.
    screened = [
        a
        for a in view["alerts"]
        if a["implicated"] == [f"MedicationStatement/{imported.logical_id}"]
    ]
    assert [a["severity"] for a in screened] == ["low"]
    push(store, fhir_base_url, ctx.tenant)
    _assert_reconciled(store, fhir_base_url, ctx)

    versions = _version_count(store, ctx)
    again = puller(store, fhir_base_url).pull(ctx.tenant)
    assert again.counts[Outcome.UPDATED] == again.counts[Outcome.IMPORTED] == 0
    assert again.counts[Outcome.DELETED] == again.counts[Outcome.CONFLICT] == 0
    assert again.received > 0, "the overlap window reads the last changes again"
    assert _version_count(store, ctx) == versions

    # The clinic sending its same old record again does not undo the EHR's edit.
    ingest(store, sub, ctx)
    assert _row(store, ctx, "Patient").version == now.version


def _changed_on_both_sides(
    store: Engine, base: str, ctx: MappingContext, n: int, phone: str, email: str
) -> Any:
    """Patient n pushed, then its phone changed on the EHR and its email by the clinic (not
    pushed yet); its store row as it was pushed."""
    sub = encounter(n)
    ingest(store, sub, ctx)
    push(store, base, ctx.tenant)
    patient = _row(store, ctx, "Patient")
    ehr_edit(base, "Patient", patient.ehr_id, set_phone(phone))
    changed = sub.model_copy(update={"patient": sub.patient.model_copy(update={"email": email})})
    ingest(store, changed, ctx)
    return patient


@ON_BOTH_STORES
def test_pull__same_patient_changed_on_both_sides__conflict_kept_until_resolved(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    patient = _changed_on_both_sides(
        store, fhir_base_url, ctx, 1, "+1 555 0142", "new.address@example.org"
    )

    summary = puller(store, fhir_base_url).pull(ctx.tenant)

    assert summary.counts[Outcome.CONFLICT] == 1
    ours = _row(store, ctx, "Patient")
    assert ours.version == patient.version + 1  # the clinic's change, not overwritten
    assert "new.address@example.org" in ours.content
    with store.connect() as conn:
        (conflict,) = list_conflicts(conn, ctx.tenant)
    assert conflict.key == f"Patient/{patient.logical_id}"
    assert any(c.path.startswith("telecom") for c in conflict.changes)
    assert "+1 555 0142" in _conflict_content(store, conflict.id)

    # The push meets the EHR's version and parks too: nothing is overwritten there either.
    worker = pusher(store, fhir_base_url, ctx.tenant)
    worker.drain()
    with store.connect() as conn:
        assert box.counts(conn, ctx.tenant).get(box.CONFLICT) == 1
    on_ehr = requests.get(
        f"{fhir_base_url}/Patient/{patient.ehr_id}", headers=FHIR_JSON, timeout=30
    )
    assert "+1 555 0142" in on_ehr.text
    assert "new.address@example.org" not in on_ehr.text
    again = puller(store, fhir_base_url).pull(ctx.tenant)
    assert again.counts[Outcome.CONFLICT] == 0, "a known conflict is not recorded twice"

    with write_transaction(store) as conn:
        resolve(conn, conflict.id, "clinic", ehr_base=fhir_base_url, actor="it", now=_now())
    worker.drain()
    with store.connect() as conn:
        assert set(box.counts(conn, ctx.tenant)) == {box.DONE}
        assert list_conflicts(conn, ctx.tenant) == []
    on_ehr = requests.get(
        f"{fhir_base_url}/Patient/{patient.ehr_id}", headers=FHIR_JSON, timeout=30
    )
    assert "new.address@example.org" in on_ehr.text
    after = puller(store, fhir_base_url).pull(ctx.tenant)
    assert after.counts[Outcome.UPDATED] == after.counts[Outcome.CONFLICT] == 0
    _assert_reconciled(store, fhir_base_url, ctx)


@ON_BOTH_STORES
def test_pull__conflict_resolved_for_the_ehr__its_version_becomes_ours(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    _changed_on_both_sides(store, fhir_base_url, ctx, 2, "+1 555 0177", "other@example.org")
    puller(store, fhir_base_url).pull(ctx.tenant)
    with store.connect() as conn:
        (conflict,) = list_conflicts(conn, ctx.tenant)
    with write_transaction(store) as conn:
        resolve(conn, conflict.id, "ehr", ehr_base=fhir_base_url, actor="it", now=_now())
    ours = _row(store, ctx, "Patient")
    assert "+1 555 0177" in ours.content
    assert "other@example.org" not in ours.content
    assert _versions(store, ours.pk)[-1].source == "ehr"
    push(store, fhir_base_url, ctx.tenant)
    with store.connect() as conn:
        assert set(box.counts(conn, ctx.tenant)) == {box.DONE}
        state = conn.execute(
            select(pull_conflicts.c.state).where(pull_conflicts.c.id == conflict.id)
        ).scalar_one()
    assert state != OPEN
    puller(store, fhir_base_url).pull(ctx.tenant)
    _assert_reconciled(store, fhir_base_url, ctx)


@ON_BOTH_STORES
def test_pull__deleted_on_the_ehr__tombstone_not_resurrected(
    fhir_base_url: str, store: Engine, ctx: MappingContext
) -> None:
    sub = encounter(3)
    ingest(store, sub, ctx)
    push(store, fhir_base_url, ctx.tenant)
    puller(store, fhir_base_url).pull(ctx.tenant)  # the history cursor starts here
    # The encounter's Provenance: nothing refers to it, so the sandbox lets it be deleted.
    reading = _row(store, ctx, "Provenance")
    gone = requests.delete(f"{fhir_base_url}/Provenance/{reading.ehr_id}", timeout=30)
    assert gone.status_code in (200, 204)

    summary = puller(store, fhir_base_url).pull(ctx.tenant)

    assert summary.counts[Outcome.DELETED] == 1
    now = _row(store, ctx, "Provenance", pk=reading.pk)
    assert now.deleted
    assert now.version == reading.version + 1
    last = _versions(store, reading.pk)[-1]
    assert last.deleted
    assert last.source == "ehr"
    assert orjson.loads(last.provenance)["activity"]["coding"][0]["code"] == "DELETE"
    again = puller(store, fhir_base_url).pull(ctx.tenant)
    assert again.counts[Outcome.DELETED] == 0
    ingest(store, sub, ctx)  # the clinic's same record again: still deleted
    assert _row(store, ctx, "Provenance", pk=reading.pk).deleted
    _assert_reconciled(store, fhir_base_url, ctx)


def test_pull__2000_changes_over_pages_of_50__killed_and_restarted__each_once(
    fhir_base_url: str, tmp_path: Path, ctx: MappingContext
) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(database)
    upgrade(engine)
    patients = [encounter(10 + n) for n in range(4)]
    for sub in patients:
        ingest(engine, sub, ctx)
    push(engine, fhir_base_url, ctx.tenant)
    ehr_ids = [_row(engine, ctx, "Patient", patient_key=s.patient.mrn).ehr_id for s in patients]
    ehr_heart_rates(fhir_base_url, ehr_ids, 2000)
    env = {
        **os.environ,
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_PULL_PAGE_SIZE": "50",
        "ADAPTER_EHR_TIMEOUT_SECONDS": "60",
        "ADAPTER_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "adapter.cli", "pull", "--tenant", ctx.tenant]
    first = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _imported(engine, ctx, fhir_base_url) < 400:
            assert first.poll() is None, "the pull ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    halfway = _imported(engine, ctx, fhir_base_url)
    assert 400 <= halfway < 2000
    with engine.connect() as conn:
        state = conn.execute(
            select(sync_state.c.value).where(
                sync_state.c.tenant == ctx.tenant, sync_state.c.name == "pull/Observation"
            )
        ).scalar_one()
    assert orjson.loads(state)["run"] is not None, "the run was under way when killed"

    second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=600)
    assert second.returncode == 0, second.stderr.decode()[-2000:]

    assert _imported(engine, ctx, fhir_base_url) == 2000
    with engine.connect() as conn:
        per_resource = conn.execute(
            select(func.count(resource_versions.c.version))
            .join(resources, resources.c.pk == resource_versions.c.resource_pk)
            .where(resources.c.tenant == ctx.tenant, resources.c.identifier_system == fhir_base_url)
            .group_by(resources.c.pk)
        ).scalars()
        assert set(per_resource) == {1}, "no change was applied twice"
    _assert_reconciled(engine, fhir_base_url, ctx)
    engine.dispose()


def _imported(engine: Engine, ctx: MappingContext, base: str) -> int:
    """The Observations imported from the EHR (their identifier system is its base URL)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(resources)
                .where(resources.c.tenant == ctx.tenant, resources.c.resource_type == "Observation")
                .where(resources.c.identifier_system == base)
            ).scalar_one()
        )


def _conflict_content(engine: Engine, conflict_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(pull_conflicts.c.ehr_content).where(pull_conflicts.c.id == conflict_id)
            ).scalar_one()
        )


def _now() -> datetime:
    return datetime.now(UTC)


def test_service__pulls_on_its_schedule__ehr_edit_arrives_without_a_command(
    fhir_base_url: str, tmp_path: Path
) -> None:
    """The service as deployed (two web processes, the parent pushes and pulls), pulling
    every second: an edit made on the EHR reaches the store by itself."""
    tag = uuid.uuid4().hex[:10]
    ctx = MappingContext(namespace=f"https://fhir.pull-{tag}.example", tenant=f"svc-{tag}")
    keys = tmp_path / "keys.json"
    keys.write_text(
        orjson.dumps(
            [{"key": SERVICE_KEY, "tenant": ctx.tenant, "scopes": ["clinic/*.*"]}]
        ).decode()
    )
    database = f"sqlite:///{tmp_path / 'adapter.db'}"
    settings = {
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": ctx.namespace,
        "ADAPTER_API_KEYS_FILE": str(keys),
        "ADAPTER_WEB_WORKERS": "2",
        "ADAPTER_PULL_INTERVAL_SECONDS": "1",
        "ADAPTER_EHR_TIMEOUT_SECONDS": "60",
    }
    sub = encounter(30)
    with serving(settings, tmp_path / "service.log") as url:
        posted = _post_until_stored(url, sub.model_dump_json(exclude_none=True).encode())
        engine = create_store_engine(database)
        try:
            patient = _wait_for(lambda: _pushed_patient(engine, ctx), "the patient to be pushed")
            ehr_edit(fhir_base_url, "Patient", patient.ehr_id, set_phone("+1 555 0123"))
            ehr_create(fhir_base_url, _statement(patient.ehr_id, "197361", "amlodipine 5 MG"))
            record = _wait_for(
                lambda: _record_with_ehr_items(url, sub.patient.mrn),
                "the scheduled pull to bring the EHR's changes to the clinic's record",
            )
            assert record["patient"]["phone"] == "+1 555 0123"
            assert _versions(engine, patient.pk)[-1].source == "ehr"
        finally:
            engine.dispose()
        reconciled = subprocess.run(
            [sys.executable, "-m", "adapter.cli", "reconcile", "--tenant", ctx.tenant],
            env={k: v for k, v in os.environ.items() if not k.startswith("ADAPTER_")} | settings,
            cwd=ROOT,
            capture_output=True,
            timeout=300,
        )
        assert reconciled.returncode == 0, reconciled.stdout.decode()[-2000:]
    assert posted.status_code == 201


def _record_with_ehr_items(url: str, mrn: str) -> Any:
    """The clinic's view of the patient once both EHR changes are in it, else None."""
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    reply = requests.get(f"{url}/clinic/patients/{mrn}", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    record = reply.json()
    names = {m["name"] for m in record["medications"] if m["source"] == "ehr"}
    ready = record["patient"]["source"] == "ehr" and "amlodipine 5 MG" in names
    return record if ready else None


def _post_until_stored(url: str, body: bytes) -> requests.Response:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SERVICE_KEY}"}
    deadline = time.monotonic() + 60
    while True:
        reply = requests.post(f"{url}/clinic/encounters", data=body, headers=headers, timeout=30)
        if reply.status_code != 503 or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def _pushed_patient(engine: Engine, ctx: MappingContext) -> Any:
    try:
        patient = _row(engine, ctx, "Patient")
    except NoResultFound:
        return None
    return patient if patient.ehr_id is not None else None


def _wait_for(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)
    return found
