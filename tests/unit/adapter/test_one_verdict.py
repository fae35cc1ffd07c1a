"""One contract, one verdict: `adapter map`, `adapter ingest` and `POST /clinic/encounters`
accept and refuse the same generated documents, valid and broken, naming the same field
paths, and write the same identifiers, under the same settings, in both namespace modes.

The documents draw their encounter ids and MRNs from small pools, so an encounter comes
back with another patient (the 409 of the identity rules) as often as a clean resend. The
command line and the service each keep a store of their own and receive the same
documents in the same order; `adapter map` reads the command line's store before
`adapter ingest` writes it, as a clinic developer would run them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from adapter.api.app import create_app
from adapter.cli import main
from adapter.store.engine import create_store_engine
from adapter.store.schema import resources
from mappings.common.identity import Identity
from tests.unit.adapter.api.conftest import WRITER_A, bearer, settings_for, write_keys
from tests.unit.mappings import strategies as gen

TENANT = "clinic-a"
Paths = frozenset[str]
BROKEN = (
    "birth date in the future",
    "control character",
    "vital sign out of range",
    "unknown field",
    "duplicate vitals_id",
    "duplicate key",
)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """An encounter document, valid or broken in one of the ways the contract refuses."""
    document: dict[str, Any] = draw(gen.encounter_documents())
    document["encounter_id"] = draw(st.sampled_from(["E-1", "E-2", "E-3"]))
    document["patient"]["mrn"] = draw(st.sampled_from(["M-1", "M-2"]))
    fault = draw(st.sampled_from((None, None, *BROKEN)))
    if fault == "birth date in the future":
        document["patient"]["birth_date"] = "2999-01-01"
    elif fault == "control character":
        field = draw(st.sampled_from(["given_name", "family_name"]))
        char = draw(st.sampled_from(["\x00", "\x07", "\x1b", "\x1f"]))
        document["patient"][field] = document["patient"][field] + char
    elif fault == "vital sign out of range" and document.get("vitals"):
        document["vitals"][0]["heart_rate"] = {"value": 900, "unit": "/min"}
    elif fault == "unknown field":
        document["patient"]["nickname"] = "x"
    elif fault == "duplicate vitals_id" and len(document.get("vitals") or []) > 1:
        document["vitals"][1]["vitals_id"] = document["vitals"][0]["vitals_id"]
    text = json.dumps(document, ensure_ascii=False)
    if fault == "duplicate key":  # not sound JSON for the contract: the API's 400
        text = text.replace('"status": ', '"status": "planned", "status": ', 1)
    return text.encode()


class Surfaces:
    """The three ways in, each with its own store, under the same settings."""

    client: TestClient

    def __init__(self, folder: Path, mode: str) -> None:
        self.folder = folder
        self.cli_url = f"sqlite:///{folder / 'cli.db'}"
        keys = folder / "keys"
        keys.mkdir()
        api = settings_for(
            folder, api_keys_file=str(write_keys(keys)), tenant_namespaces=mode
        )  # its store: folder/adapter.db
        self.app = create_app(api)
        self.env = {
            "ADAPTER_DATABASE_URL": self.cli_url,
            "ADAPTER_TENANT": TENANT,
            "ADAPTER_TENANT_NAMESPACES": mode,
            "ADAPTER_EHR_BASE_URL": "",
        }
        self.count = 0

    def cli(self, *args: str) -> tuple[int, list[str]]:
        """Run `adapter <args>` with the settings; its exit status and stderr lines."""
        err = io.StringIO()
        with _environment(self.env), contextlib.redirect_stderr(err):
            status = main(list(args))
        return status, err.getvalue().splitlines()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _paths(lines: list[str], source: Path) -> Paths:
    """The field paths of `<file>: <path>: <message>` lines about `source`."""
    prefix = f"{source}: "
    return frozenset(
        line[len(prefix) :].split(": ", 1)[0] for line in lines if line.startswith(prefix)
    )


def _bundle_keys(bundle: dict[str, Any]) -> set[str]:
    """`Type/logical id` of every resource a Bundle writes: from its request URL, by id or
    by the identifier its conditional update names."""
    keys = set()
    for entry in bundle["entry"]:
        url = entry["request"]["url"]
        kind, _, query = url.partition("?identifier=")
        if not query:
            keys.add(url)
            continue
        system, _, value = unquote(query).partition("|")
        keys.add(f"{kind}/{Identity(kind, system, value).id}")
    return keys


def _stored(engine: Engine) -> set[tuple[str, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                resources.c.resource_type,
                resources.c.logical_id,
                resources.c.identifier_system,
                resources.c.identifier_value,
                resources.c.patient_key,
            )
        )
        return {tuple(str(v) for v in row) for row in rows}


@pytest.fixture(params=["per-tenant", "shared"])
def surfaces(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Surfaces]:
    """Made once per test run (not per example): the stores see every example in turn."""
    made = Surfaces(tmp_path_factory.mktemp("verdict"), request.param)
    with TestClient(made.app) as client:
        assert made.app.state.background.migrated.wait(30)
        made.client = client
        yield made


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(document=documents())
def test_map_ingest_and_api__same_verdict_paths_and_identifiers(
    surfaces: Surfaces, document: bytes
) -> None:
    surfaces.count += 1
    source = surfaces.folder / f"doc-{surfaces.count}.json"
    source.write_bytes(document)
    out = surfaces.folder / f"out-{surfaces.count}"
    mapped, map_lines = surfaces.cli("map", str(source), "--out", str(out))
    ingested, ingest_lines = surfaces.cli("ingest", str(source))
    reply = surfaces.client.post(
        "/clinic/encounters",
        content=document,
        headers={"Content-Type": "application/json"} | bearer(WRITER_A),
    )
    body = reply.json()
    event(f"HTTP {reply.status_code}")
    accepted = reply.status_code in (200, 201)
    assert (mapped == 0, ingested == 0) == (accepted, accepted), (map_lines, ingest_lines, body)
    if not accepted:
        assert reply.status_code in (400, 409, 422), body
        api_paths = frozenset(error["field"] for error in body["errors"])
        assert _paths(map_lines, source) == _paths(ingest_lines, source) == api_paths
        assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "".join(map_lines + ingest_lines))
        return
    bundle = json.loads((out / f"{source.stem}.bundle.json").read_text())
    referenced = set(body["created"] + body["updated"] + body["unchanged"])
    assert _bundle_keys(bundle) == referenced
    cli_store = create_store_engine(surfaces.cli_url)
    try:
        assert _stored(cli_store) == _stored(surfaces.app.state.engine)
    finally:
        cli_store.dispose()
