"""Tenants and identities on the clinic API: per-tenant namespaces by default, a shared one
only with owned ids, each tenant's namespace fixed at its first document, encounters bound
to their patient, record ids scoped by their encounter. (On the sandbox too:
tests/integration/test_tenants_on_sandbox.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.runtime import mapping_context
from adapter.store.schema import identifier_owners, resource_versions, resources, tenants
from tests.unit.adapter.api.conftest import (
    WRITER_A,
    bearer,
    example,
    post_encounter,
    running,
    settings_for,
    write_keys,
)

KEY_A = "both-of-clinic-a-0123456789abcdef"
KEY_B = "both-of-clinic-b-0123456789abcdef"
KEYS = [
    {"key": KEY_A, "tenant": "clinic-a", "scopes": ["clinic/*.*", "system/*.rs"]},
    {"key": KEY_B, "tenant": "clinic-b", "scopes": ["clinic/*.*", "system/*.rs"]},
]
BASE = "https://fhir.example-clinic.org"
TYPICAL = "typical-ketamine-infusion"


def _app(folder: Path, mode: str) -> FastAPI:
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    path = write_keys(keys, KEYS)
    return create_app(settings_for(folder, api_keys_file=str(path), tenant_namespaces=mode))


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[TestClient]:
    yield from running(_app(tmp_path, "shared"))


def _patient(client: TestClient, receipt: dict[str, Any], key: str) -> dict[str, Any]:
    references = receipt["created"] + receipt["updated"] + receipt["unchanged"]
    patient = next(ref for ref in references if ref.startswith("Patient/"))
    reply = client.get(f"/fhir/{patient}", headers=bearer(key))
    assert reply.status_code == 200
    found: dict[str, Any] = reply.json()
    return found


def _b_sends_a_s_ids() -> dict[str, Any]:
    """Clinic B's own visit, under clinic A's MRN, encounter id and record ids."""
    document = example(TYPICAL)
    document["patient"] |= {"given_name": "Other", "family_name": "Person"}
    document["vitals"][0]["heart_rate"]["value"] = 101
    return document


def _snapshot(app: FastAPI, tenant: str) -> list[tuple[Any, ...]]:
    """Everything the store holds of a tenant: each resource's identity, version, content."""
    with app.state.engine.connect() as conn:
        rows = conn.execute(
            select(
                resources.c.resource_type,
                resources.c.logical_id,
                resources.c.version,
                resources.c.content_hash,
            )
            .where(resources.c.tenant == tenant)
            .order_by(resources.c.pk)
        )
        return [tuple(row) for row in rows]


def test_default__per_tenant_namespaces() -> None:
    assert Settings().tenant_namespaces == "per-tenant"


def test_per_tenant__same_ids_from_two_clinics__distinct_resources_nothing_shared(
    tmp_path: Path,
) -> None:
    for client in running(_app(tmp_path, "per-tenant")):
        a = post_encounter(client, example(TYPICAL), KEY_A)
        b = post_encounter(client, _b_sends_a_s_ids(), KEY_B)
        assert (a.status_code, b.status_code) == (201, 201)
        a_refs, b_refs = (set(r.json()["created"]) for r in (a, b))
        assert not a_refs & b_refs
        patient_a, patient_b = _patient(client, a.json(), KEY_A), _patient(client, b.json(), KEY_B)
        assert all(i["system"].startswith(f"{BASE}/clinic-a/") for i in patient_a["identifier"])
        assert all(i["system"].startswith(f"{BASE}/clinic-b/") for i in patient_b["identifier"])
        assert patient_a["name"][0]["family"] != patient_b["name"][0]["family"]
        # B's receipt holds B's references only, and its status URL is B's alone.
        assert client.get(a.json()["status_url"], headers=bearer(KEY_B)).status_code == 404


def test_shared__b_sends_a_s_ids__409_naming_each_field_and_id_nothing_changes(
    shared: TestClient,
) -> None:
    app: FastAPI = shared.app  # type: ignore[assignment]
    assert post_encounter(shared, example(TYPICAL), KEY_A).status_code == 201
    before = _snapshot(app, "clinic-a")
    reply = post_encounter(shared, _b_sends_a_s_ids(), KEY_B)
    assert reply.status_code == 409
    body = reply.json()
    assert body["type"].endswith(":id-conflict")
    fields = {(e["field"], e["id"]) for e in body["errors"]}
    assert ("patient.mrn", "MRN-004211") in fields
    assert ("encounter_id", "ENC-2026-1120-001") in fields
    assert ("providers[0].provider_id", "PRV-07") in fields
    assert ("vitals[0].vitals_id", "VS-1") in fields
    # Nothing of A in the answer: no tenant name, no content, no logical id of A's.
    text = reply.text
    assert "clinic-a" not in text
    assert "García" not in text
    assert "Ana María" not in text
    assert not any(ref.split("/")[1] in text for ref in _refs(app, "clinic-a"))
    assert _snapshot(app, "clinic-a") == before
    assert _snapshot(app, "clinic-b") == []


def test_shared__b_with_its_own_ids__accepted_beside_a(shared: TestClient) -> None:
    assert post_encounter(shared, example(TYPICAL), KEY_A).status_code == 201
    document = example(TYPICAL)
    document["encounter_id"] = "ENC-B-1"
    document["patient"]["mrn"] = "MRN-B-1"
    for provider in document["providers"]:
        provider["provider_id"] += "-B"
    for field in ("administered_by", "monitored_by"):
        document["infusion"][field] += "-B"
    document["medication_review"]["reviewed_by"] += "-B"
    # Record ids are scoped by the encounter: B may number its vitals VS-1 too.
    assert post_encounter(shared, document, KEY_B).status_code == 201


def test_namespace__fixed_at_the_tenant_s_first_document__later_settings_apply_to_new_tenants(
    tmp_path: Path,
) -> None:
    for client in running(_app(tmp_path, "shared")):
        assert post_encounter(client, example(TYPICAL), KEY_A).status_code == 201
    for client in running(_app(tmp_path, "per-tenant")):
        resend = post_encounter(client, example(TYPICAL), KEY_A)
        assert resend.status_code == 200
        assert resend.json()["created"] == []  # the same identifiers: nothing new
        assert post_encounter(client, _b_sends_a_s_ids(), KEY_B).status_code == 201
        app: FastAPI = client.app  # type: ignore[assignment]
        with app.state.engine.connect() as conn:
            pinned = dict(conn.execute(select(tenants.c.tenant, tenants.c.namespace)).all())
        assert pinned == {"clinic-a": BASE, "clinic-b": f"{BASE}/clinic-b"}


def test_encounter_sent_again_for_another_patient__409_naming_encounter_id_nothing_changes(
    shared: TestClient,
) -> None:
    app: FastAPI = shared.app  # type: ignore[assignment]
    assert post_encounter(shared, example(TYPICAL), KEY_A).status_code == 201
    before = _snapshot(app, "clinic-a")
    moved = example(TYPICAL)
    moved["patient"]["mrn"] = "MRN-SOMEONE-ELSE"
    reply = post_encounter(shared, moved, KEY_A)
    assert reply.status_code == 409
    (error,) = reply.json()["errors"]
    assert (error["field"], error["id"]) == ("encounter_id", "ENC-2026-1120-001")
    assert "another patient" in error["message"]
    assert _snapshot(app, "clinic-a") == before


def test_second_visit_reusing_vs_1_to_vs_4__both_visits_keep_their_readings(
    client: TestClient,
) -> None:
    first = example(TYPICAL)
    second = example(TYPICAL)
    second["encounter_id"] = "ENC-2026-1127-002"
    for reading in second["vitals"]:
        reading["taken_at"] = reading["taken_at"].replace("2026-11-20", "2026-11-27")
    assert post_encounter(client, first).status_code == 201
    receipt = post_encounter(client, second).json()
    assert receipt["deleted"] == []
    assert not [ref for ref in receipt["updated"] if ref.startswith("Observation/")]
    app: FastAPI = client.app  # type: ignore[assignment]
    with app.state.engine.connect() as conn:
        readings = conn.execute(
            select(func.count())
            .select_from(resources)
            .where(
                resources.c.resource_type == "Observation",
                resources.c.identifier_system.like("%/sid/vitals"),
                resources.c.identifier_value.like("%~panel"),
                resources.c.deleted.is_(False),
            )
        ).scalar_one()
        moved = conn.execute(
            select(func.count())
            .select_from(resource_versions)
            .where(resource_versions.c.version > 1)
        ).scalar_one()
    assert readings == 2 * len(first["vitals"])
    assert moved == 0  # no reading of the first visit was rewritten


def test_per_record_for_an_encounter_of_another_patient__409_naming_encounter_id(
    client: TestClient,
) -> None:
    assert post_encounter(client, example(TYPICAL)).status_code == 201
    post_encounter(client, _other_patient_visit())
    reading = {**example(TYPICAL)["vitals"][0], "vitals_id": "VS-9"}
    record = reading | {"encounter_id": "ENC-2026-1120-001", "patient_mrn": "MRN-OTHER-1"}
    reply = client.post(
        "/clinic/vitals",
        content=json.dumps(record),
        headers={"Content-Type": "application/json"} | bearer(WRITER_A),
    )
    assert reply.status_code == 409
    (error,) = reply.json()["errors"]
    assert (error["field"], error["id"]) == ("encounter_id", "ENC-2026-1120-001")


def test_identifiers__owned_by_the_tenant_that_wrote_them(client: TestClient) -> None:
    assert post_encounter(client, example(TYPICAL)).status_code == 201
    app: FastAPI = client.app  # type: ignore[assignment]
    with app.state.engine.connect() as conn:
        owned = conn.execute(select(identifier_owners.c.tenant).distinct()).scalars().all()
        count = conn.execute(select(func.count()).select_from(identifier_owners)).scalar_one()
        written = conn.execute(
            select(resources.c.identifier_system, resources.c.identifier_value)
            .where(resources.c.resource_type != "Device")
            .distinct()
        ).all()
    assert owned == ["clinic-a"]
    assert count == len(written)  # every identifier but the adapter's Device


@pytest.mark.parametrize(
    ("mode", "expected"), [("shared", BASE), ("per-tenant", f"{BASE}/clinic-a")]
)
def test_mapping_context__namespace_per_mode(mode: str, expected: str) -> None:
    settings = Settings(namespace=BASE + "/", tenant_namespaces=mode)
    ctx = mapping_context(settings, "clinic-a")
    assert (ctx.namespace, ctx.tenant) == (expected, "clinic-a")
    assert mapping_context(settings).tenant == "default"


def _refs(app: FastAPI, tenant: str) -> list[str]:
    with app.state.engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.logical_id).where(
                resources.c.tenant == tenant
            )
        )
        return [f"{kind}/{logical_id}" for kind, logical_id in rows]


def _other_patient_visit() -> dict[str, Any]:
    document = example(TYPICAL)
    document["encounter_id"] = "ENC-OTHER-1"
    document["patient"]["mrn"] = "MRN-OTHER-1"
    return document
