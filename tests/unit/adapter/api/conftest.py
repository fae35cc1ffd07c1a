"""A running clinic API on a temp SQLite store, with API keys for two tenants."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api.app import create_app
from adapter.config import Settings
from tests.store_template import migrated_sqlite
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

WRITER_A = "writer-of-clinic-a-0123456789abcdef"
READER_A = "reader-of-clinic-a-0123456789abcdef"
WRITER_B = "wildcard-of-clinic-b-0123456789abcdef"
WRITE_ONLY_A = "write-only-of-clinic-a-0123456789abcdef"
KEYS = [
    {
        "key": WRITER_A,
        "tenant": "clinic-a",
        "scopes": ["clinic/encounters.write", "clinic/submissions.read"],
    },
    {"key": READER_A, "tenant": "clinic-a", "scopes": ["clinic/submissions.read"]},
    {"key": WRITE_ONLY_A, "tenant": "clinic-a", "scopes": ["clinic/encounters.write"]},
    {"key": WRITER_B, "tenant": "clinic-b", "scopes": ["clinic/*.write", "clinic/*.read"]},
]
JSON = "application/json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def example_bytes(name: str) -> bytes:
    return (EXAMPLES_DIR / f"{name}.json").read_bytes()


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(example_bytes(name))
    return document


def write_keys(folder: Path, keys: object = KEYS) -> Path:
    path = folder / "api-keys.json"
    path.write_text(json.dumps(keys))
    return path


def settings_for(folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": migrated_sqlite(folder / "adapter.db"),
        "ehr_base_url": "",
        "api_keys_file": str(write_keys(folder)),
    }
    return Settings(**(values | overrides))


def running(app: FastAPI) -> Iterator[TestClient]:
    """A client of `app` with its lifespan started and its store migrated."""
    with TestClient(app) as client:
        assert app.state.background.migrated.wait(60)
        yield client


def serve(app: FastAPI) -> Iterator[int]:
    """`app` on a real uvicorn (a thread) on a free loopback port, store migrated: the port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start in 60 s"
        time.sleep(0.02)
    assert app.state.background.migrated.wait(60)
    yield port
    server.should_exit = True
    thread.join(60)


WRITE_AND_READ_FHIR = ["clinic/encounters.write", "system/*.rs"]


def two_tenants(
    folder: Path,
    key_a: str,
    key_b: str,
    scopes: list[str] = WRITE_AND_READ_FHIR,
    **overrides: Any,
) -> Iterator[TestClient]:
    """A running app where `key_a` is of tenant clinic-a and `key_b` of clinic-b, both with
    `scopes`, and `overrides` of the settings."""
    (folder / "keys").mkdir(parents=True)
    keys = [
        {"key": key_a, "tenant": "clinic-a", "scopes": scopes},
        {"key": key_b, "tenant": "clinic-b", "scopes": scopes},
    ]
    path = write_keys(folder / "keys", keys)
    yield from running(create_app(settings_for(folder, api_keys_file=str(path), **overrides)))


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(settings_for(tmp_path))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    yield from running(app)


def post_encounter(
    client: TestClient,
    body: bytes | dict[str, Any],
    key: str = WRITER_A,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": JSON} | bearer(key) | (headers or {})
    return client.post("/clinic/encounters", content=content, headers=sent)


# A patient whose every value is distinctive: found anywhere, it leaked.
SENTINELS = (
    "Zebulon-Sentinel",
    "Quixotewhistle",
    "MRN-SENTINEL-7731",
    "1911-11-11",
    "ENC-SENTINEL-42",
    "987.654",
)


def sentinel_document() -> dict[str, Any]:
    document = example("typical-ketamine-infusion")
    document["encounter_id"] = "ENC-SENTINEL-42"
    document["patient"] |= {
        "given_name": "Zebulon-Sentinel",
        "family_name": "Quixotewhistle",
        "mrn": "MRN-SENTINEL-7731",
        "birth_date": "1911-11-11",
    }
    return document


FHIR_KEY = "fhir-reader-writer-of-a-0123456789abcdef"


def searchable(folder: Path, **overrides: Any) -> Iterator[TestClient]:
    """A running app holding one typical encounter of clinic-a, with `FHIR_KEY` (write the
    clinic API, read `/fhir`) and `overrides` of the settings."""
    (folder / "keys").mkdir()
    scopes = ["clinic/encounters.write", "system/*.rs"]
    keys = write_keys(folder / "keys", [{"key": FHIR_KEY, "tenant": "clinic-a", "scopes": scopes}])
    app = create_app(settings_for(folder, api_keys_file=str(keys), **overrides))
    for client in running(app):
        reply = post_encounter(client, example("typical-ketamine-infusion"), FHIR_KEY)
        assert reply.status_code == 201
        yield client


def subscriptions_app(folder: Path, keys: object) -> FastAPI:
    """The app with `keys`, Subscriptions allowed to loopback receivers, and no worker:
    the tests deliver themselves, when they mean to."""
    (folder / "keys").mkdir()
    keys_file = write_keys(folder / "keys", keys)
    settings = settings_for(
        folder,
        api_keys_file=str(keys_file),
        run_worker=False,
        subscription_allowed_hosts="127.0.0.1",
    )
    return create_app(settings)
