"""Migration 0011 on a store indexed under the older parameter table: every current
resource is indexed again by R4's names, and nothing of the old rows is left."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from adapter.ingest import ingest_encounter
from adapter.store.engine import create_store_engine
from adapter.store.migrate import alembic_config, current_revision, upgrade
from adapter.store.schema import resources, search_index
from adapter.store.search_index import index_values
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TENANT = "clinic-a"


def _store_at_0007(tmp_path: Path) -> Engine:
    """A store at 0007 holding an encounter, its index as the older table wrote it: the
    `encounter` of a MedicationAdministration, the `date` of a MedicationRequest, no
    `context`, no Patient `family`."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    # Today's ingest needs today's tables (it looks up the subscriptions a change notifies):
    # the encounter goes in at the head, then the store goes back to 0007.
    upgrade(engine)
    document = (EXAMPLES_DIR / "typical-ketamine-infusion.json").read_bytes()
    ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{TENANT}", tenant=TENANT)
    ingest_encounter(engine, document, ctx, clock=lambda: T0)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007")
    with engine.begin() as conn:
        old = [
            {"param": "encounter", "resource_type": "MedicationAdministration"},
            {"param": "date", "resource_type": "MedicationRequest"},
        ]
        conn.execute(sa.delete(search_index).where(search_index.c.param != "~ref"))
        pk = conn.execute(sa.select(sa.func.min(resources.c.pk))).scalar_one()
        for row in old:
            conn.execute(sa.insert(search_index).values(resource_pk=pk, tenant=TENANT, **row))
    return engine


def _rows(engine: Engine) -> set[tuple[object, ...]]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(
                search_index.c.resource_pk,
                search_index.c.resource_type,
                search_index.c.param,
                search_index.c.system,
                search_index.c.value,
            )
        )
        return {tuple(row) for row in found}


def test_0011__reindexes_every_current_resource_by_r4_names(tmp_path: Path) -> None:
    engine = _store_at_0007(tmp_path)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(resources.c.pk, resources.c.resource_type, resources.c.content).where(
                resources.c.deleted.is_(False)
            )
        ).fetchall()

    upgrade(engine, "0011")

    assert current_revision(engine) == "0011"
    expected = {
        (pk, kind, param, system, value)
        for pk, kind, content in stored
        for (_, _, _, param, system, value, _, _) in index_values(
            pk, TENANT, kind, json.loads(content)
        )
    }
    rows = _rows(engine)
    assert rows == expected
    params = {(kind, param) for _, kind, param, _, _ in rows}
    assert ("MedicationAdministration", "context") in params
    assert ("MedicationAdministration", "encounter") not in params
    assert ("MedicationRequest", "date") not in params
    assert ("Patient", "family") in params
    engine.dispose()
