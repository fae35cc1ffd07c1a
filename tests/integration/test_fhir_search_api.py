"""The `/fhir` face end to end: `adapter serve` in a subprocess, read by an independent client.

The three shared examples go in through the clinic API; `fhirpy` (a FHIR client that knows
nothing of this code) reads them back: search following `next` links to the end,
`$everything` of each patient, and a conditional read answered 304. The service runs
once on SQLite and once on PostgreSQL, under a namespace of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhirpy import SyncFHIRClient

from mappings.context import MappingContext
from tests.integration.test_clinic_api import Service, _post, serving
from tests.unit.mappings.fhircheck import EXAMPLE_NAMES, EXAMPLES_DIR

pytestmark = pytest.mark.integration

READER_KEY = f"fhir-reader-{uuid.uuid4().hex}"


@pytest.fixture(params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, fhir_base_url: str, tmp_path: Path
) -> Iterator[Service]:
    """The service with the three examples ingested (pushing to the sandbox meanwhile)."""
    database = (
        f"sqlite:///{tmp_path / 'adapter.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    ctx = MappingContext(namespace=f"https://fhir.search-{uuid.uuid4().hex[:10]}.example")
    tenant = f"search-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "keys.json"
    scopes = ["clinic/encounters.write", "system/*.rs"]
    keys.write_text(json.dumps([{"key": READER_KEY, "tenant": tenant, "scopes": scopes}]))
    settings = {
        "ADAPTER_DATABASE_URL": database,
        "ADAPTER_EHR_BASE_URL": fhir_base_url,
        "ADAPTER_NAMESPACE": ctx.namespace,
        "ADAPTER_API_KEYS_FILE": str(keys),
    }
    log = tmp_path / "service.log"
    with serving(settings, log) as url:
        yield Service(url, ctx, log)


@pytest.fixture
def ingested(service: Service) -> dict[str, list[str]]:
    """Each example's created references, posted with the reader's key."""
    created: dict[str, list[str]] = {}
    for name in EXAMPLE_NAMES:
        body = (EXAMPLES_DIR / f"{name}.json").read_bytes()
        reply = _post(service, body, {"Authorization": f"Bearer {READER_KEY}"})
        assert reply.status_code == 201, reply.text
        created[name] = reply.json()["created"]
    return created


def _client(service: Service) -> SyncFHIRClient:
    return SyncFHIRClient(
        f"{service.url}/fhir",
        authorization=f"Bearer {READER_KEY}",
        requests_config={"timeout": 30},
    )


def _pages(client: SyncFHIRClient, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page from `first` on, following `next` with the client (it refuses a `next`
    outside its base URL)."""
    page: dict[str, Any] | None = first
    while page is not None:
        yield page
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        page = client.execute(following[0], method="get") if following else None


def test_fhirpy__search_follows_paging_to_the_end__every_resource_once(
    service: Service, ingested: dict[str, list[str]]
) -> None:
    client = _client(service)
    stored = {ref for refs in ingested.values() for ref in refs}
    for resource_type in ("Observation", "Patient", "Encounter", "MedicationAdministration"):
        wanted = {ref for ref in stored if ref.startswith(f"{resource_type}/")}
        found = client.resources(resource_type).limit(7).fetch_all()
        references = [f"{resource_type}/{resource['id']}" for resource in found]
        assert len(references) == len(set(references)) == len(wanted), resource_type
        assert set(references) == wanted
        assert client.resources(resource_type).count() == len(wanted)


def test_fhirpy__search_by_patient_and_code__the_patients_heart_rates(
    service: Service, ingested: dict[str, list[str]]
) -> None:
    client = _client(service)
    patient = client.resources("Patient").search(identifier="MRN-004211").get()
    observations = (
        client.resources("Observation")
        .search(patient=patient["id"], code="http://loinc.org|8867-4")
        .include("Observation", "patient")
        .fetch_all()
    )
    assert observations
    assert all(o["subject"]["reference"] == f"Patient/{patient['id']}" for o in observations)


def test_fhirpy__everything_of_each_patient__its_full_set_over_pages(
    service: Service, ingested: dict[str, list[str]]
) -> None:
    client = _client(service)
    for name, created in ingested.items():
        patient_id = next(ref for ref in created if ref.startswith("Patient/")).split("/")[1]
        first = client.execute(f"Patient/{patient_id}/$everything", "get", params={"_count": 10})
        references = [
            f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for page in _pages(client, first)
            for entry in page.get("entry", [])
        ]
        assert len(references) == len(set(references)) == first["total"], name
        # Everything this encounter created, plus shared resources created by another
        # example (the clinic, a practitioner seen before) that it cites.
        assert set(created) <= set(references), name


def test_fhirpy__conditional_read__304_then_refresh_keeps_the_resource(
    service: Service, ingested: dict[str, list[str]]
) -> None:
    client = _client(service)
    patient = client.resources("Patient").search(identifier="MRN-009876").get()
    version = patient["meta"]["versionId"]
    answer, status = client._do_request(
        "get",
        f"Patient/{patient['id']}",
        extra_headers={"If-None-Match": f'W/"{version}"'},
        returning_status=True,
    )
    assert (answer, status) == (None, 304)
    refreshed = patient.refresh()  # fhirpy sends the bare version id
    assert refreshed["id"] == patient["id"]
    assert refreshed["meta"]["versionId"] == version
