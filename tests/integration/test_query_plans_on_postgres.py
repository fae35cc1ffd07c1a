"""The `/fhir` requests the read benchmark makes use indexes on PostgreSQL, not table scans.

A store of several hundred encounters (tens of thousands of resources, hundreds of
thousands of search-index rows, statistics fresh) answers the benchmark's requests through
the real app; every SELECT the app sent is then explained with its own parameters, and no
plan may read `resources`, `resource_versions` or `search_index` from end to end.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, select, text

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.store import key_reads
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import resources
from mappings.context import MappingContext
from tests.integration.support import encounters, ingest, own_database

pytestmark = pytest.mark.integration

ENCOUNTERS = 400
TENANT = "plans"
KEY = "plans-reader-" + uuid.uuid4().hex
BIG_TABLES = {"resources", "resource_versions", "search_index"}


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    with own_database(postgres_url, "plans") as url:
        store = create_store_engine(url)
        upgrade(store)
        ctx = MappingContext(namespace="https://fhir.plans.example", tenant=TENANT)
        for sub in encounters(ENCOUNTERS):
            ingest(store, sub, ctx)
        with store.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        store.dispose()
        yield url


def _ids(url: str, kind: str, count: int) -> list[str]:
    engine = create_store_engine(url)
    with engine.connect() as conn:
        query = (
            select(resources.c.logical_id)
            .where(resources.c.tenant == TENANT, resources.c.resource_type == kind)
            .order_by(resources.c.logical_id)
            .limit(count)
        )
        found = list(conn.execute(query).scalars())
    engine.dispose()
    return found


def _sent_selects(engine: Engine, client: TestClient, paths: list[str]) -> list[tuple[str, Any]]:
    """Every SELECT `engine` ran while the app answered `paths` (each must answer 200)."""
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        for path in paths:
            reply = client.get(path, headers={"Authorization": f"Bearer {KEY}"})
            assert reply.status_code == 200, (path, reply.text[:300])
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def _full_scans(plan: Any) -> list[str]:
    found: list[str] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
                found.append(str(node["Relation Name"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_read_benchmark_requests__postgres__no_full_scan_of_a_large_table(
    database: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"key": KEY, "tenant": TENANT, "scopes": ["system/*.rs"]}]))
    settings = Settings(database_url=database, ehr_base_url="", api_keys_file=str(keys))
    patients = _ids(database, "Patient", 5)
    observations = _ids(database, "Observation", 5)
    code = "http://loinc.org|8867-4"
    paths = (
        [f"/fhir/Observation/{o}" for o in observations]
        + [f"/fhir/Observation?patient=Patient/{p}&code={code}&_count=50" for p in patients]
        + [f"/fhir/Patient/{p}/$everything" for p in patients]
        + [f"/fhir/Observation?patient={p}&_sort=-date&_count=50" for p in patients]
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert app.state.background.migrated.wait(60)
        selects = _sent_selects(app.state.engine, client, paths)
    # Reads by id run on the event loop, on connections of their own (key_reads): their
    # statement is not the engine's to see.
    assert app.state.key_reads is not None
    named = [
        {"tenant": TENANT, "resource_type": "Observation", "logical_id": o} for o in observations
    ]
    selects += [(key_reads._CURRENT_SQL, params) for params in named]
    assert len(selects) >= len(paths)
    explainer = create_engine(database)
    scans: list[tuple[str, list[str]]] = []
    with explainer.connect() as conn:
        for statement, params in selects:
            cursor = conn.connection.cursor()
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            row = cursor.fetchone()
            assert row is not None
            plan = row[0]
            if found := _full_scans(plan):
                scans.append((statement[:200], found))
    explainer.dispose()
    assert scans == []
