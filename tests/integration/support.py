"""Shared by the integration tests: many distinct encounters, a store of either kind (or a
PostgreSQL database of a test's own), pushing and pulling them, finding and counting them
on the sandbox by identifier, editing the sandbox as an EHR user would, and its `$validate`.

Each run uses its own namespace (`https://fhir.it-<tag>.example`), so every identifier
system is new to the sandbox and a count by system counts exactly this run's resources.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import Engine, create_engine, make_url, text

from adapter.ehr.client import FhirClient
from adapter.ingest import ingest_encounter
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.sync.pull.puller import Puller, PullOptions
from adapter.sync.push.worker import Backoff, PushSummary, PushWorker
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.unit.mappings.fhircheck import load_example

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

# The `store` fixture (conftest.py) is SQLite unless a test asks for both kinds with this.
ON_BOTH_STORES = pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)


def run_context() -> MappingContext:
    return MappingContext(namespace=f"https://fhir.it-{uuid.uuid4().hex[:10]}.example")


def tenant_context(prefix: str) -> MappingContext:
    """A namespace and a tenant of the test's own, both named `<prefix>-<tag>`."""
    tag = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return MappingContext(namespace=f"https://fhir.{tag}.example", tenant=tag)


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file of the test's own (`kind` "sqlite"), or the test PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@contextmanager
def migrated_store(url: str) -> Iterator[Engine]:
    engine = create_store_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def own_database(postgres_url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<tag>` on the test PostgreSQL, dropped (its connections
    too) afterwards: its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def ingest(engine: Engine, sub: EncounterSubmission, ctx: MappingContext) -> None:
    ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), ctx)


def pusher(engine: Engine, base: str, tenant: str | None = None) -> PushWorker:
    """A push worker to the sandbox, of `tenant`'s outbox entries (or of all)."""
    return PushWorker(
        engine,
        FhirClient(base, timeout_seconds=60),
        owner="it-push",
        tenant=tenant,
        backoff=Backoff(0.05),
    )


def push(engine: Engine, base: str, tenant: str | None = None) -> PushSummary:
    """Every outbox entry (of `tenant`, or of all) due now pushed to the sandbox."""
    return pusher(engine, base, tenant).drain()


def puller(engine: Engine, base: str, **options: Any) -> Puller:
    return Puller(
        engine,
        FhirClient(base, timeout_seconds=60),
        owner="it-pull",
        options=PullOptions(**options),
    )


def encounter(
    n: int, example: str = "typical-ketamine-infusion", visit: int = 0
) -> EncounterSubmission:
    """The shared example with every clinic id made unique to `n` (patient included); a
    `visit` above 0 is another encounter of that same patient, with records of its own."""
    data = load_example(example).model_dump(mode="json", exclude_none=True)
    data["patient"]["mrn"] += f"-N{n}"
    suffix = f"-N{n}" + (f"-V{visit}" if visit else "")
    data["encounter_id"] += suffix
    for record, key in (
        ("intake_screening", "screening_id"),
        ("infusion", "procedure_id"),
        ("medication_review", "review_id"),
    ):
        if record in data:
            data[record][key] += suffix
    for reading in data.get("vitals", []):
        reading["vitals_id"] += suffix
    return EncounterSubmission.model_validate(data)


def encounters(
    count: int, example: str = "typical-ketamine-infusion"
) -> Iterator[EncounterSubmission]:
    return (encounter(n, example) for n in range(count))


def sandbox_count(base: str, resource_type: str, system: str) -> int:
    """How many resources of a type the sandbox holds under an identifier system."""
    reply = requests.get(
        f"{base}/{resource_type}",
        params={"identifier": f"{system}|", "_summary": "count"},
        headers=FHIR_JSON,
        timeout=60,
    )
    reply.raise_for_status()
    return int(reply.json()["total"])


def sandbox_search(base: str, resource_type: str, system: str, value: str = "") -> list[Any]:
    """The resources of a type the sandbox holds under an identifier (every value of the
    system when `value` is empty), from the first page of the search."""
    reply = requests.get(
        f"{base}/{resource_type}",
        params={"identifier": f"{system}|{value}"},
        headers=FHIR_JSON,
        timeout=30,
    )
    reply.raise_for_status()
    return [entry["resource"] for entry in reply.json().get("entry", [])]


def ehr_heart_rates(base: str, patient_ids: list[str], count: int, batch: int = 250) -> None:
    """`count` heart-rate Observations about the patients (in turn), created directly on the
    sandbox as an EHR's users would, in transaction Bundles of `batch`."""
    vital_signs = "http://terminology.hl7.org/CodeSystem/observation-category"
    for start in range(0, count, batch):
        entries = [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{"system": vital_signs, "code": "vital-signs"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{patient_ids[n % len(patient_ids)]}"},
                    "effectiveDateTime": "2026-11-20T10:00:00Z",
                    "valueQuantity": {
                        "value": 60 + n % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
            for n in range(start, min(start + batch, count))
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        reply = requests.post(base, data=orjson.dumps(bundle), headers=FHIR_JSON, timeout=600)
        reply.raise_for_status()


def ehr_create(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A resource created directly on the sandbox, as an EHR user would; as it answered."""
    reply = requests.post(
        f"{base}/{resource['resourceType']}",
        data=orjson.dumps(resource),
        headers=FHIR_JSON,
        timeout=30,
    )
    reply.raise_for_status()
    return dict(reply.json())


def ehr_edit(base: str, resource_type: str, ehr_id: str, change: Any) -> dict[str, Any]:
    """Read, change and write back one resource on the sandbox, as an EHR user would."""
    current = requests.get(f"{base}/{resource_type}/{ehr_id}", headers=FHIR_JSON, timeout=30)
    current.raise_for_status()
    body = current.json()
    change(body)
    reply = requests.put(
        f"{base}/{resource_type}/{ehr_id}",
        data=orjson.dumps(body),
        headers={**FHIR_JSON, "If-Match": current.headers["ETag"]},
        timeout=30,
    )
    reply.raise_for_status()
    return dict(reply.json())


def set_phone(phone: str) -> Any:
    def change(patient: dict[str, Any]) -> None:
        others = [t for t in patient.get("telecom", []) if t.get("system") != "phone"]
        patient["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}, *others]

    return change


def validation_errors(base: str, resources: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """The error (and fatal) issues of the sandbox's `$validate` of each resource, by
    `Type/id`; the resources without any are left out."""
    failures: dict[str, list[str]] = {}
    with requests.Session() as http:
        for res in resources:
            reply = http.post(
                f"{base}/{res['resourceType']}/$validate",
                json=res,
                headers=FHIR_JSON,
                timeout=60,
            )
            errors = _errors(reply.json())
            if errors:
                failures[f"{res['resourceType']}/{res['id']}"] = errors
    return failures


def _errors(outcome: dict[str, Any]) -> list[str]:
    return [
        f"{i.get('severity')}: {i.get('diagnostics')} @ {i.get('expression') or i.get('location')}"
        for i in outcome.get("issue", [])
        if i.get("severity") in ("error", "fatal")
    ]
