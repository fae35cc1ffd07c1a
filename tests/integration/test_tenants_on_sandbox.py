"""Tenants and identities end to end, with the real sandbox as EHR (issue 14's Done-when).

- Two clinics on one instance, in every namespace setting: B sending A's MRN, encounter id
  and record ids changes nothing of A's on the store or on the sandbox, and B learns
  nothing of A (status, body, ids); the pull for each takes nothing of the other's.
- A second visit reusing VS-1..VS-4 keeps both visits' readings, on /fhir and on the
  sandbox; an encounter resent for another patient is refused whole.
- A store written by the older code and pushed to the sandbox, migrated: a resend and a
  new visit leave no duplicate on the sandbox (counted by identifier).
- After a pull of an EHR edit, the new version on /fhir carries the labels, and its
  Provenance is found by `Provenance?target=`, `_revinclude` and `$everything`.

The clinic API runs in-process (a TestClient); push and pull run as `adapter push` and
`adapter pull` run them. Every test uses a namespace and tenants of its own, so the
sandbox's other data cannot match.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.ehr.client import FhirClient
from adapter.ingest import ingest_encounter
from adapter.runtime import mapping_context
from adapter.store.ehr_provenance import LINEAGE_SYSTEM
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.schema import resources
from adapter.sync.pull.puller import Puller, PullOptions
from adapter.sync.push.worker import Backoff, PushWorker
from mappings.common.bundle import WRITTEN_BY_ID
from tests.integration.support import FHIR_JSON, sandbox_count
from tests.unit.adapter.store.legacy_store import accept_0006, migrated_to_0006, old_context
from tests.unit.mappings.fhircheck import EXAMPLES_DIR, load_example

pytestmark = pytest.mark.integration

TYPICAL = "typical-ketamine-infusion"
SCOPES = ["clinic/*.*", "system/*.rs"]
MRN, ENCOUNTER = "MRN-004211", "ENC-2026-1120-001"
A_NAMES = ("García-López", "Ana María")


@dataclass
class Instance:
    """One adapter instance: its settings, clinic API, store, and each clinic's key."""

    settings: Settings
    client: TestClient
    engine: Engine
    keys: dict[str, str]

    def post(self, tenant: str, document: dict[str, Any]) -> httpx2.Response:
        headers = {"Content-Type": "application/json"} | self._auth(tenant)
        return self.client.post("/clinic/encounters", content=json.dumps(document), headers=headers)

    def get(self, tenant: str, path: str) -> httpx2.Response:
        return self.client.get(path, headers=self._auth(tenant))

    def push(self) -> None:
        with FhirClient(self.settings.ehr_base_url, timeout_seconds=60) as ehr:
            PushWorker(self.engine, ehr, owner="it-tenants", backoff=Backoff(0.05)).drain()

    def pull(self, tenant: str) -> None:
        with FhirClient(self.settings.ehr_base_url, timeout_seconds=60) as ehr:
            puller = Puller(self.engine, ehr, owner="it-tenants", options=PullOptions())
            assert not puller.pull(tenant).failed

    def _auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


@dataclass(frozen=True)
class Place:
    """Where an instance keeps its state, across restarts, and what it is called."""

    folder: Path
    base: str
    namespace: str
    tenants: tuple[str, str]


@pytest.fixture
def place(tmp_path: Path, fhir_base_url: str) -> Place:
    tag = uuid.uuid4().hex[:10]
    return Place(
        tmp_path, fhir_base_url, f"https://fhir.tenants-{tag}.example", (f"a-{tag}", f"b-{tag}")
    )


@contextmanager
def running(place: Place, mode: str) -> Iterator[Instance]:
    """The instance with `ADAPTER_TENANT_NAMESPACES=mode` (push and pull run by the test)."""
    keys = {tenant: f"key-{tenant}-{uuid.uuid4().hex}" for tenant in place.tenants}
    keys_file = place.folder / f"keys-{uuid.uuid4().hex[:6]}.json"
    listed = [{"key": k, "tenant": t, "scopes": SCOPES} for t, k in keys.items()]
    keys_file.write_text(json.dumps(listed))
    settings = Settings.model_validate(
        {
            "database_url": f"sqlite:///{place.folder / 'store.db'}",
            "ehr_base_url": place.base,
            "ehr_timeout_seconds": 60,
            "namespace": place.namespace,
            "tenant_namespaces": mode,
            "api_keys_file": str(keys_file),
            "run_worker": False,
            "pull_interval_seconds": 0,
        }
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.background.migrated.wait(60)
        yield Instance(settings, client, app.state.engine, keys)


def _document(name: str = TYPICAL) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((EXAMPLES_DIR / f"{name}.json").read_text())
    return found


def _b_with_a_s_ids() -> dict[str, Any]:
    """Clinic B's own visit, under clinic A's MRN, encounter id and record ids."""
    document = _document()
    document["patient"] |= {"given_name": "Other", "family_name": "Person"}
    document["vitals"][0]["heart_rate"]["value"] = 101
    return document


def _store_state(engine: Engine, tenant: str) -> list[tuple[Any, ...]]:
    """Every row of the tenant: identity, version, content, what the EHR holds of it."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                resources.c.resource_type,
                resources.c.logical_id,
                resources.c.version,
                resources.c.content_hash,
                resources.c.ehr_id,
                resources.c.ehr_version,
            )
            .where(resources.c.tenant == tenant)
            .order_by(resources.c.pk)
        )
        return [tuple(row) for row in rows]


def _sandbox_state(base: str, state: list[tuple[Any, ...]]) -> dict[str, str]:
    """What the sandbox holds of those rows now: `Type/ehr id` -> its versionId."""
    found = {}
    for resource_type, _, _, _, ehr_id, _ in state:
        if ehr_id is None:
            continue
        reply = requests.get(f"{base}/{resource_type}/{ehr_id}", headers=FHIR_JSON, timeout=60)
        reply.raise_for_status()
        found[f"{resource_type}/{ehr_id}"] = reply.json()["meta"]["versionId"]
    return found


def _leaks(text: str, tenant: str, state: list[tuple[Any, ...]]) -> list[str]:
    """What of the tenant's `text` holds: its name, a name of its patient, any of its ids."""
    marks = [tenant, *A_NAMES]
    marks += [str(row[1]) for row in state] + [str(row[4]) for row in state if row[4]]
    # Whole tokens only: a random hex id of B's may well hold an EHR id's digits.
    return [m for m in marks if re.search(rf"(?<![0-9A-Za-z]){re.escape(m)}(?![0-9A-Za-z])", text)]


@pytest.mark.parametrize("mode", ["per-tenant", "shared", "shared-then-per-tenant"])
def test_two_tenants__b_sends_a_s_ids__nothing_of_a_changes_and_b_learns_nothing(
    place: Place, mode: str
) -> None:
    clinic_a, clinic_b = place.tenants
    first, later = mode.split("-then-") if "-then-" in mode else (mode, mode)
    with running(place, first) as instance:
        assert instance.post(clinic_a, _document()).status_code == 201
        instance.push()
        before = _store_state(instance.engine, clinic_a)
        on_ehr = _sandbox_state(place.base, before)
        assert len(on_ehr) == len(before)  # every resource of A reached the sandbox
    with running(place, later) as instance:
        reply = instance.post(clinic_b, _b_with_a_s_ids())
        if later == "shared":
            assert reply.status_code == 409
            fields = {(e["field"], e["id"]) for e in reply.json()["errors"]}
            assert {("patient.mrn", MRN), ("encounter_id", ENCOUNTER)} <= fields
            assert ("vitals[0].vitals_id", "VS-1") in fields
        else:
            assert reply.status_code == 201
        assert _leaks(reply.text, clinic_a, before) == []
        if reply.status_code == 201:
            status = instance.get(clinic_b, reply.json()["status_url"])
            assert status.status_code == 200
            assert _leaks(status.text, clinic_a, before) == []
        instance.push()
        instance.pull(clinic_a)
        instance.pull(clinic_b)
        assert _store_state(instance.engine, clinic_a) == before
        assert _sandbox_state(place.base, before) == on_ehr
        seen_by_b = instance.get(clinic_b, f"/clinic/patients/{MRN}")
        assert _leaks(seen_by_b.text, clinic_a, before) == []
        for path in (f"/fhir/Patient?identifier={MRN}", "/fhir/Encounter", "/fhir/Observation"):
            found = instance.get(clinic_b, path)
            assert found.status_code == 200
            assert _leaks(found.text, clinic_a, before) == []
        of_a = instance.get(clinic_a, f"/clinic/patients/{MRN}").json()
        assert of_a["patient"]["family_name"] == A_NAMES[0]
        assert of_a["patient"]["source"] == "clinic"


def test_second_visit_reusing_vs_1_to_vs_4__both_visits_readings_on_fhir_and_sandbox(
    place: Place,
) -> None:
    clinic_a = place.tenants[0]
    second = _document()
    second["encounter_id"] = "ENC-2026-1127-002"
    for reading in second["vitals"]:
        reading["taken_at"] = reading["taken_at"].replace("2026-11-20", "2026-11-27")
        if "heart_rate" in reading:
            reading["heart_rate"]["value"] += 1
    with running(place, "per-tenant") as instance:
        assert instance.post(clinic_a, _document()).status_code == 201
        assert instance.post(clinic_a, second).status_code == 201
        instance.push()
        patient = instance.get(clinic_a, f"/clinic/patients/{MRN}").json()["patient"]["fhir"]
        bundle = instance.get(clinic_a, f"/fhir/Observation?patient={patient}&_count=1000").json()
        ctx = mapping_context(instance.settings, clinic_a)
        system = f"{ctx.namespace}/sid/vitals"
        panels = [
            ident["value"]
            for e in bundle["entry"]
            for ident in e["resource"].get("identifier", [])
            if ident["system"] == system and ident["value"].endswith("~panel")
        ]
        assert sorted(panels) == sorted(
            f"{encounter}~VS-{n}~panel"
            for encounter in (ENCOUNTER, second["encounter_id"])
            for n in range(1, 5)
        )
        readings = _readings_on(instance, clinic_a, system)
        assert readings[ENCOUNTER] == readings[second["encounter_id"]] > 4
        total = sum(readings.values())
        assert sandbox_count(place.base, "Observation", system) == total

        before = _store_state(instance.engine, clinic_a)
        moved = _document()
        moved["patient"]["mrn"] = "MRN-SOMEONE-ELSE"
        reply = instance.post(clinic_a, moved)
        assert reply.status_code == 409
        (error,) = reply.json()["errors"]
        assert (error["field"], error["id"]) == ("encounter_id", ENCOUNTER)
        instance.push()
        assert _store_state(instance.engine, clinic_a) == before
        assert sandbox_count(place.base, "Observation", system) == total


def _readings_on(instance: Instance, tenant: str, system: str) -> Counter[str]:
    """The tenant's vitals Observations in the store (every one pushed), per encounter."""
    with instance.engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.identifier_value, resources.c.ehr_id).where(
                resources.c.tenant == tenant,
                resources.c.identifier_system == system,
                resources.c.deleted.is_(False),
            )
        ).all()
    assert all(ehr_id for _, ehr_id in rows)
    return Counter(value.split("~")[0] for value, _ in rows)


def test_store_from_before_0007__migrated__resend_and_new_visit_leave_no_duplicate_on_the_ehr(
    place: Place,
) -> None:
    tenant = place.tenants[0]
    engine = create_store_engine(f"sqlite:///{place.folder / 'older.db'}")
    try:
        migrated_to_0006(engine)
        sub = load_example(TYPICAL)
        # The older default: every tenant in the one shared namespace.
        with write_transaction(engine) as conn:
            accept_0006(conn, sub, old_context(sub, place.namespace, tenant), datetime.now(UTC))
        _push(engine, place.base)
        _assert_one_per_identifier(engine, place.base)

        upgrade(engine)
        settings = Settings(namespace=place.namespace)  # the new default: per-tenant
        ctx = mapping_context(settings, tenant)
        document = sub.model_dump_json(exclude_none=True)
        resend = ingest_encounter(engine, document.encode(), ctx).result
        assert resend.created == resend.updated == resend.deleted == []
        changed = json.loads(document)
        changed["vitals"][1]["heart_rate"]["value"] += 3
        again = ingest_encounter(engine, json.dumps(changed).encode(), ctx).result
        assert again.created == []
        assert [k.split("/")[0] for k in again.updated] == ["Observation"]
        visit = json.loads(document) | {"encounter_id": "ENC-2026-1127-002"}
        new = ingest_encounter(engine, json.dumps(visit).encode(), ctx).result
        assert any(k.startswith("Observation/") for k in new.created)
        _push(engine, place.base)
        _assert_one_per_identifier(engine, place.base)
    finally:
        engine.dispose()


def _push(engine: Engine, base: str) -> None:
    with FhirClient(base, timeout_seconds=60) as ehr:
        summary = PushWorker(engine, ehr, owner="it-upgrade", backoff=Backoff(0.05)).drain()
    assert summary.dead == summary.conflicts == 0


def _assert_one_per_identifier(engine: Engine, base: str) -> None:
    """Each identifier of the store is on the sandbox once: per type and identifier system,
    the sandbox holds exactly as many resources as the store (every row pushed)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                resources.c.resource_type, resources.c.identifier_system, resources.c.ehr_id
            ).where(resources.c.identifier_system != LINEAGE_SYSTEM)
        ).all()
    assert all(ehr_id for _, _, ehr_id in rows)
    stored = Counter((kind, system) for kind, system, _ in rows if kind not in WRITTEN_BY_ID)
    on_ehr = {key: sandbox_count(base, *key) for key in stored}
    assert on_ehr == dict(stored)


def test_pull_of_an_ehr_edit__new_version_labelled__its_provenance_found_on_fhir(
    place: Place,
) -> None:
    clinic_a = place.tenants[0]
    with running(place, "per-tenant") as instance:
        assert instance.post(clinic_a, _document()).status_code == 201
        instance.push()
        patient = instance.get(clinic_a, f"/clinic/patients/{MRN}").json()["patient"]["fhir"]
        ehr_id = _ehr_id(instance, patient)
        _ehr_edit_dropping_labels(place.base, "Patient", ehr_id)
        created = _ehr_statement(place.base, ehr_id)
        instance.pull(clinic_a)

        current = instance.get(clinic_a, f"/fhir/{patient}").json()
        assert current["telecom"][0]["value"] == "+1 555 0100"
        assert current["meta"]["security"] == LABELS
        found = instance.get(clinic_a, f"/fhir/Provenance?target={patient}").json()
        (provenance,) = [e["resource"] for e in found["entry"]]
        assert provenance["target"][0]["reference"].startswith(f"{patient}/_history/")
        what = provenance["entity"][0]["what"]["reference"]
        assert what == f"{place.base}/Patient/{ehr_id}/_history/2"
        assert provenance["meta"]["security"] == LABELS
        read = instance.get(clinic_a, f"/fhir/Provenance/{provenance['id']}")
        assert read.status_code == 200
        patient_id = patient.split("/")[1]
        revinclude = f"/fhir/Patient?_id={patient_id}&_revinclude=Provenance:target"
        included = instance.get(clinic_a, revinclude).json()["entry"]
        assert provenance["id"] in {e["resource"]["id"] for e in included}
        everything = instance.get(clinic_a, f"/fhir/{patient}/$everything?_count=1000").json()
        members = {
            (e["resource"]["resourceType"], e["resource"]["id"]): e["resource"]
            for e in everything["entry"]
        }
        assert ("Provenance", provenance["id"]) in members
        imported = [
            r
            for (kind, _), r in members.items()
            if kind == "MedicationStatement" and r["medicationCodeableConcept"]["text"] == created
        ]
        assert len(imported) == 1
        assert imported[0]["meta"]["security"] == LABELS
        lineage = [r for (kind, _), r in members.items() if kind == "Provenance"]
        targets = {t["reference"].split("/_history/")[0] for p in lineage for t in p["target"]}
        assert f"MedicationStatement/{imported[0]['id']}" in targets
        # Another clinic finds none of it.
        of_b = instance.get(place.tenants[1], f"/fhir/Provenance/{provenance['id']}")
        assert of_b.status_code == 404


LABELS = [
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "BH"},
]


def _ehr_id(instance: Instance, reference: str) -> str:
    kind, _, logical_id = reference.partition("/")
    with instance.engine.connect() as conn:
        return str(
            conn.execute(
                select(resources.c.ehr_id).where(
                    resources.c.resource_type == kind, resources.c.logical_id == logical_id
                )
            ).scalar_one()
        )


def _ehr_edit_dropping_labels(base: str, resource_type: str, ehr_id: str) -> None:
    """An EHR user changes the phone number; the EHR keeps no security label."""
    url = f"{base}/{resource_type}/{ehr_id}"
    current = requests.get(url, headers=FHIR_JSON, timeout=60)
    current.raise_for_status()
    body = current.json()
    body["telecom"] = [{"system": "phone", "value": "+1 555 0100", "use": "mobile"}]
    body["meta"] = {}
    reply = requests.put(
        url, json=body, headers=FHIR_JSON | {"If-Match": current.headers["ETag"]}, timeout=60
    )
    reply.raise_for_status()


def _ehr_statement(base: str, patient_ehr_id: str) -> str:
    """A MedicationStatement the EHR's users add about the patient; its drug's text."""
    text = f"sertraline 50 mg {uuid.uuid4().hex[:6]}"
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": f"Patient/{patient_ehr_id}"},
    }
    reply = requests.post(
        f"{base}/MedicationStatement", json=statement, headers=FHIR_JSON, timeout=60
    )
    reply.raise_for_status()
    return text
