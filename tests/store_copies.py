"""What the store-copy tests (SQLite here, PostgreSQL in tests/integration) share: a store
with typical encounters and an audit trail in it, every table's row count, and the `/fhir`
answers of a store, to compare a copy with its source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.ingest import ingest_encounter
from adapter.store.schema import metadata, resources
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.integration.support import encounter

TENANTS = ("clinic-a", "clinic-b")
READER = "copy-reader-of-the-store-0123456789abcdef"


def context(tenant: str) -> MappingContext:
    return MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenant}", tenant=tenant)


def ingest(engine: Engine, tenant: str, numbers: range) -> None:
    for number in numbers:
        document = encounter(number).model_dump_json(exclude_none=True).encode()
        ingest_encounter(engine, document, context(tenant))


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }


def largest_resource_pk(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(resources.c.pk))).scalar_one())


@contextmanager
def fhir_reader(database_url: str, folder: Path, tenant: str) -> Iterator[TestClient]:
    """The `/fhir` API of the store at `database_url`, with a reading key of `tenant`."""
    keys = folder / f"keys-{tenant}.json"
    keys.write_text(json.dumps([{"key": READER, "tenant": tenant, "scopes": ["system/*.rs"]}]))
    settings = Settings(database_url=database_url, ehr_base_url="", api_keys_file=str(keys))
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.background.migrated.wait(60)
        client.headers.update({"Authorization": f"Bearer {READER}"})
        yield client


def resource_ids(engine: Engine, tenant: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.resource_type, resources.c.logical_id)
            .where(resources.c.tenant == tenant)
            .order_by(resources.c.pk)
        ).all()
    return [(kind, logical_id) for kind, logical_id in rows]


def fhir_answers(engine: Engine, folder: Path, tenant: str) -> dict[str, object]:
    """Every resource of `tenant` read by id, each Patient's Observations searched and its
    `$everything`: the resources answered, by request (what a copy must answer alike)."""
    url = engine.url.render_as_string(hide_password=False)
    answers: dict[str, object] = {}
    with fhir_reader(url, folder, tenant) as client:
        for kind, logical_id in resource_ids(engine, tenant):
            path = f"/fhir/{kind}/{logical_id}"
            reply = client.get(path)
            assert reply.status_code == 200, path
            answers[path] = reply.json()
            if kind == "Patient":
                for asked in (f"/fhir/Observation?patient={logical_id}", f"{path}/$everything"):
                    bundle = client.get(asked).json()
                    answers[asked] = [e["resource"] for e in bundle.get("entry", [])]
    return answers
