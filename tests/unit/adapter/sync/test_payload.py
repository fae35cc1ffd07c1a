"""The Bundle an outbox entry sends, built from the store's current content."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from adapter.ingest import ingest_encounter
from adapter.store.engine import create_store_engine
from adapter.store.migrate import upgrade
from adapter.store.schema import outbox
from adapter.sync.payload import build
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.unit.mappings.fhircheck import load_example

CTX = MappingContext()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(made)
    yield made
    made.dispose()


def _ingest(engine: Engine, sub: EncounterSubmission) -> None:
    ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), CTX)


def _entry_keys(engine: Engine) -> list[list[str]]:
    with engine.connect() as conn:
        return [list(keys) for keys in conn.execute(select(outbox.c.resource_keys)).scalars()]


def test_build__records_moved_to_a_newer_encounter__that_encounter_travels_along(
    engine: Engine,
) -> None:
    first = load_example("typical-ketamine-infusion")
    _ingest(engine, first)
    # The clinic corrects which visit its records belong to, before anything was pushed:
    # the stored readings now refer to an Encounter that only the second entry brings.
    _ingest(engine, first.model_copy(update={"encounter_id": f"{first.encounter_id}-B"}))
    keys, later = _entry_keys(engine)
    (moved_to,) = [k for k in later if k.startswith("Encounter/") and k not in keys]
    with engine.connect() as conn:
        payload = build(conn, "default", keys)
    sent = {item.key for item in payload.items}
    assert moved_to in sent
    assert set(keys) <= sent
    references = re.findall(r'"reference":"([^"]+)"', orjson.dumps(payload.bundle).decode())
    assert references
    # Every reference points into the Bundle: none is a conditional one left to fail.
    assert all(ref.startswith("urn:uuid:") for ref in references), references


def test_build__nothing_moved__bundle_holds_exactly_the_entry(engine: Engine) -> None:
    _ingest(engine, load_example("typical-ketamine-infusion"))
    (keys,) = _entry_keys(engine)
    with engine.connect() as conn:
        payload = build(conn, "default", keys)
    assert [item.key for item in payload.items] == keys
