"""`ADAPTER_TENANT_NAMESPACES`: two clinics sending the same MRN get distinct patients only
when each tenant has its own identifier namespace; the default keeps the shared one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.runtime import mapping_context
from tests.unit.adapter.api.conftest import (
    example,
    post_encounter,
    running,
    settings_for,
    write_keys,
)

KEY_A = "both-of-clinic-a-0123456789abcdef"
KEY_B = "both-of-clinic-b-0123456789abcdef"
KEYS = [
    {"key": KEY_A, "tenant": "clinic-a", "scopes": ["clinic/*.*"]},
    {"key": KEY_B, "tenant": "clinic-b", "scopes": ["clinic/*.*"]},
]
BASE = "https://fhir.example-clinic.org"


def _patients(tmp_path: Path, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each tenant's Patient, as read back through /fhir, after both sent the same document."""
    keys = tmp_path / "keys"
    keys.mkdir()
    settings = settings_for(
        tmp_path, api_keys_file=str(write_keys(keys, KEYS)), tenant_namespaces=mode
    )
    document = example("typical-ketamine-infusion")
    found = []
    for client in running(create_app(settings)):
        for key in (KEY_A, KEY_B):
            receipt = post_encounter(client, document, key=key)
            assert receipt.status_code == 201
            references = receipt.json()["created"] + receipt.json()["updated"]
            patient = next(ref for ref in references if ref.startswith("Patient/"))
            reply = client.get(f"/fhir/{patient}", headers={"Authorization": f"Bearer {key}"})
            assert reply.status_code == 200
            found.append(reply.json())
    return found[0], found[1]


def test_per_tenant__same_mrn__distinct_patients_and_identifiers(tmp_path: Path) -> None:
    a, b = _patients(tmp_path, "per-tenant")
    assert a["id"] != b["id"]
    systems_a = {identifier["system"] for identifier in a["identifier"]}
    systems_b = {identifier["system"] for identifier in b["identifier"]}
    assert all(system.startswith(f"{BASE}/clinic-a") for system in systems_a)
    assert all(system.startswith(f"{BASE}/clinic-b") for system in systems_b)
    values = {identifier["value"] for identifier in a["identifier"]}
    assert values & {identifier["value"] for identifier in b["identifier"]}  # the same MRN


def test_shared__the_default__same_mrn_gives_the_same_ids_as_before(tmp_path: Path) -> None:
    a, b = _patients(tmp_path, "shared")
    assert a["id"] == b["id"]
    assert a["identifier"] == b["identifier"]
    assert Settings().tenant_namespaces == "shared"


@pytest.mark.parametrize(
    ("mode", "expected"), [("shared", BASE), ("per-tenant", f"{BASE}/clinic-a")]
)
def test_mapping_context__namespace_per_mode(mode: str, expected: str) -> None:
    settings = Settings(namespace=BASE + "/", tenant_namespaces=mode)
    ctx = mapping_context(settings, "clinic-a")
    assert (ctx.namespace, ctx.tenant) == (expected, "clinic-a")
    assert mapping_context(settings).tenant == "default"
