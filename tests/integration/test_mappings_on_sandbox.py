"""Mapped resources and Bundles against the real HAPI FHIR sandbox."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
import requests

from mappings.common.bundle import WRITTEN_BY_ID, resource_identity, transaction_bundle
from mappings.common.identity import Identity
from mappings.context import MappingContext
from mappings.contract import Measurement
from mappings.encounter.submission import map_submission
from tests.integration.support import FHIR_JSON, validation_errors
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, load_example

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run_tag() -> str:
    return uuid.uuid4().hex[:10]


def _ctx(tag: str) -> MappingContext:
    # A namespace per test run keeps runs apart on a long-lived sandbox.
    return MappingContext(namespace=f"https://fhir.it-{tag}.example")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_validate__every_mapped_resource__no_error_issues(
    fhir_base_url: str, run_tag: str, name: str
) -> None:
    resources = map_submission(load_example(name), _ctx(run_tag))
    failures = validation_errors(fhir_base_url, resources)
    assert not failures, failures


def _post(base: str, bundle: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(base, json=bundle, headers=FHIR_JSON, timeout=120)
    assert reply.status_code == 200, reply.text[:2000]
    body: dict[str, Any] = reply.json()
    return body


def _count(base: str, ident: Identity) -> int:
    """How many copies the sandbox holds: by identifier, or by id for types written by id."""
    if ident.resource_type in WRITTEN_BY_ID:
        search = {"_id": ident.id}
    else:
        search = {"identifier": f"{ident.system}|{ident.value}"}
    reply = requests.get(
        f"{base}/{ident.resource_type}",
        params={**search, "_summary": "count"},
        headers=FHIR_JSON,
        timeout=30,
    )
    reply.raise_for_status()
    return int(reply.json()["total"])


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_transaction__posted_twice__exactly_one_of_each_resource(
    fhir_base_url: str, run_tag: str, name: str
) -> None:
    ctx = _ctx(f"{run_tag}-twice-{name}")  # no resource shared with the other examples
    resources = map_submission(load_example(name), ctx)
    bundle = transaction_bundle(resources, ctx)
    first = _post(fhir_base_url, bundle)
    second = _post(fhir_base_url, bundle)
    assert [e["response"]["status"][:3] for e in first["entry"]] == ["201"] * len(resources)
    assert {e["response"]["status"][:3] for e in second["entry"]} == {"200"}
    for res in resources:
        ident = resource_identity(res, ctx)
        assert _count(fhir_base_url, ident) == 1, ident


def test_transaction__changed_encounter__updates_in_place_with_new_versions(
    fhir_base_url: str, run_tag: str
) -> None:
    ctx = _ctx(f"{run_tag}-changed")
    original = load_example("typical-ketamine-infusion")
    _post(fhir_base_url, transaction_bundle(map_submission(original, ctx), ctx))
    vitals = list(original.vitals or ())
    faster = Measurement(value=92, unit="/min")
    changed_reading = vitals[1].model_copy(update={"heart_rate": faster})
    changed = original.model_copy(update={"vitals": [vitals[0], changed_reading, *vitals[2:]]})
    resources = map_submission(changed, ctx)
    reply = _post(fhir_base_url, transaction_bundle(resources, ctx))
    statuses = Counter(e["response"]["status"][:3] for e in reply["entry"])
    assert statuses["201"] == 0, statuses
    versions = [e["response"].get("etag") for e in reply["entry"]]
    assert any(v and v != 'W/"1"' for v in versions), versions
    for res in resources:
        ident = resource_identity(res, ctx)
        assert _count(fhir_base_url, ident) == 1, ident
