"""Reads by id on PostgreSQL from the event loop (adapter.store.key_reads): the same answer
as the threads give, bound to the caller's tenant, 503 past the budget or on a dead
connection and served again after, and not used behind a transaction pooler."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from adapter.api.app import create_app
from adapter.config import Settings
from adapter.ingest import ingest_encounter
from adapter.store import key_reads
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.unit.adapter.api.conftest import bearer, running
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

pytestmark = pytest.mark.integration

READER_A = f"key-reads-a-{uuid.uuid4().hex}"
READER_B = f"key-reads-b-{uuid.uuid4().hex}"


@pytest.fixture
def tenants() -> tuple[str, str]:
    return f"kr-a-{uuid.uuid4().hex[:10]}", f"kr-b-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def created(postgres_url: str, tenants: tuple[str, str]) -> list[str]:
    """`Type/id` of what one example made for the first tenant."""
    engine = create_store_engine(postgres_url)
    try:
        upgrade(engine)
        tenant = tenants[0]
        ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenant}", tenant=tenant)
        document = (EXAMPLES_DIR / "typical-ketamine-infusion.json").read_bytes()
        made: list[str] = ingest_encounter(engine, document, ctx).result.created
        return made
    finally:
        engine.dispose()


def _app(database_url: str, tmp_path: Path, tenants: tuple[str, str]) -> FastAPI:
    keys = tmp_path / "keys.json"
    scopes = ["system/*.rs"]
    keys.write_text(
        json.dumps(
            [
                {"key": READER_A, "tenant": tenants[0], "scopes": scopes},
                {"key": READER_B, "tenant": tenants[1], "scopes": scopes},
            ]
        )
    )
    settings = Settings(
        database_url=database_url,
        ehr_base_url="",
        run_worker=False,
        api_keys_file=str(keys),
        statement_timeout_ms=300,
    )
    return create_app(settings)


@pytest.fixture
def app(postgres_url: str, tmp_path: Path, tenants: tuple[str, str]) -> FastAPI:
    return _app(postgres_url, tmp_path, tenants)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


def _served_on_the_loop(app: FastAPI) -> int:
    reads: key_reads.KeyReads = app.state.key_reads
    return int(reads.pool.get_stats().get("requests_num", 0))


def test_read__postgres__on_the_loop_the_same_answer_and_only_the_callers_tenant(
    app: FastAPI, client: TestClient, created: list[str]
) -> None:
    before = _served_on_the_loop(app)
    for reference in created:
        read = client.get(f"/fhir/{reference}", headers=bearer(READER_A))
        assert read.status_code == 200, read.text
        version = read.headers["ETag"].removeprefix('W/"').removesuffix('"')
        # A version read still goes through the read threads: the same resource.
        threaded = client.get(f"/fhir/{reference}/_history/{version}", headers=bearer(READER_A))
        assert threaded.status_code == 200, threaded.text
        assert read.json() == threaded.json()
        assert f"{read.json()['resourceType']}/{read.json()['id']}" == reference
        other = client.get(f"/fhir/{reference}", headers=bearer(READER_B))
        assert other.status_code == 404, other.text
    assert _served_on_the_loop(app) - before == 2 * len(created)


def test_read__postgres__past_the_budget__503_then_served(
    client: TestClient, created: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = key_reads._CURRENT_SQL.replace("FROM resources", "FROM resources, pg_sleep(20)")
    monkeypatch.setattr(key_reads, "_CURRENT_SQL", slow)
    started = time.monotonic()
    refused = client.get(f"/fhir/{created[0]}", headers=bearer(READER_A))
    assert refused.status_code == 503, refused.text
    assert time.monotonic() - started < 15
    monkeypatch.undo()
    served = client.get(f"/fhir/{created[0]}", headers=bearer(READER_A))
    assert served.status_code == 200, served.text


def _kill_key_read_connections(postgres_url: str) -> int:
    killer = create_store_engine(postgres_url)
    try:
        with killer.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": key_reads.APPLICATION_NAME},
            ).scalar_one()
            conn.commit()
        return int(killed)
    finally:
        killer.dispose()


@pytest.mark.parametrize("idle_long", [True, False], ids=["idle", "in-steady-use"])
def test_read__postgres__its_connections_killed__served_again(
    client: TestClient,
    created: list[str],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    idle_long: bool,
) -> None:
    """Idle past the threshold, the ping replaces them unseen; in steady use (not pinged)
    a read fails once, the pool checks the rest, and reads are served again."""
    assert client.get(f"/fhir/{created[0]}", headers=bearer(READER_A)).status_code == 200
    monkeypatch.setattr(key_reads, "PING_AFTER_IDLE_SECONDS", 0.0 if idle_long else 3600.0)
    assert _kill_key_read_connections(postgres_url) >= 1
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        statuses.append(client.get(f"/fhir/{created[0]}", headers=bearer(READER_A)).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200
    assert set(statuses) <= {200, 503}
    if idle_long:
        assert statuses == [200]


def test_key_reads__behind_a_pooler_or_on_sqlite__none(postgres_url: str, tmp_path: Path) -> None:
    assert key_reads.key_reads_for(f"{postgres_url}?pgbouncer=true", 300, 5) is None
    assert key_reads.key_reads_for(f"sqlite:///{tmp_path / 'store.db'}", 300, 5) is None
    assert key_reads.key_reads_for(postgres_url, 300, 5) is not None
