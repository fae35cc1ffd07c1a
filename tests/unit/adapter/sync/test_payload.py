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
from adapter.store.schema import outbox
from adapter.sync.push.payload import build
from mappings.context import MappingContext
from mappings.contract import EncounterSubmission
from tests.store_template import migrated_sqlite
from tests.unit.mappings.fhircheck import load_example

CTX = MappingContext()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_store_engine(migrated_sqlite(tmp_path / "store.db"))
    yield made
    made.dispose()


def _ingest(engine: Engine, sub: EncounterSubmission) -> None:
    ingest_encounter(engine, sub.model_dump_json(exclude_none=True).encode(), CTX)


def _entry_keys(engine: Engine) -> list[list[str]]:
    with engine.connect() as conn:
        return [list(keys) for keys in conn.execute(select(outbox.c.resource_keys)).scalars()]


def test_build__second_visit_before_the_first_is_pushed__its_patient_travels_along(
    engine: Engine,
) -> None:
    first = load_example("typical-ketamine-infusion")
    _ingest(engine, first)
    # A second visit of the same patient, reusing the first visit's record ids (two readings
    # each), accepted before anything was pushed: its records refer to a Patient that only
    # the first entry brings, and that the second entry leaves unchanged.
    _ingest(engine, first.model_copy(update={"encounter_id": f"{first.encounter_id}-B"}))
    keys, later = _entry_keys(engine)
    (patient,) = [k for k in keys if k.startswith("Patient/")]
    assert patient not in later
    assert not {k for k in later if not k.startswith(_SHARED)} & set(keys)
    with engine.connect() as conn:
        payload = build(conn, "default", later)
    sent = {item.key for item in payload.items}
    assert patient in sent
    assert set(later) <= sent
    references = re.findall(r'"reference":"([^"]+)"', orjson.dumps(payload.bundle).decode())
    assert references
    # Every reference points into the Bundle: none is a conditional one left to fail.
    assert all(ref.startswith("urn:uuid:") for ref in references), references


_SHARED = ("Organization/", "Device/", "Practitioner/", "PractitionerRole/", "Patient/")


def test_build__one_visit__bundle_holds_exactly_the_entry(engine: Engine) -> None:
    _ingest(engine, load_example("typical-ketamine-infusion"))
    (keys,) = _entry_keys(engine)
    with engine.connect() as conn:
        payload = build(conn, "default", keys)
    assert [item.key for item in payload.items] == keys
