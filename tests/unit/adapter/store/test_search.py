"""Search, `$everything` and type history in the store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, event, func, select

from adapter.api.fhir.params import parse_search
from adapter.ingest import ingest_encounter
from adapter.store import compartment, search
from adapter.store.history import history_page, history_total
from adapter.store.migrate import alembic_config, upgrade
from adapter.store.schema import resources, search_index
from adapter.store.search import Found, Position, SearchQuery, take_snapshot
from mappings.context import DEFAULT_NAMESPACE, MappingContext
from tests.unit.mappings.fhircheck import EXAMPLES_DIR

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _ingest(engine: Engine, tenant: str, name: str, at: datetime = T0) -> list[str]:
    document = (EXAMPLES_DIR / f"{name}.json").read_bytes()
    ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenant}", tenant=tenant)
    created: list[str] = ingest_encounter(engine, document, ctx, clock=lambda: at).result.created
    return created


def _query(resource_type: str, text: str) -> SearchQuery:
    pairs = [tuple(p.split("=", 1)) for p in text.split("&") if p]
    return parse_search(resource_type, [(k, v) for k, v in pairs], strict=True)


def _search(engine: Engine, tenant: str, resource_type: str, text: str = "") -> list[Found]:
    with engine.connect() as conn:
        snapshot = take_snapshot(conn, datetime.now(UTC))
        return search.page(conn, tenant, _query(resource_type, text), snapshot, None)


def _patient_id(created: list[str]) -> str:
    return next(ref for ref in created if ref.startswith("Patient/")).split("/")[1]


def test_search__each_parameter_kind__on_this_database(engine: Engine, tenant: str) -> None:
    created = _ingest(engine, tenant, "typical-ketamine-infusion")
    patient = _patient_id(created)
    heart = _search(
        engine, tenant, "Observation", f"patient={patient}&code=http://loinc.org|8867-4"
    )
    assert heart
    assert all(json.loads(f.content)["code"]["coding"][0]["code"] == "8867-4" for f in heart)
    assert len(_search(engine, tenant, "Observation", "date=ge2026-11-20&date=lt2026-11-21")) > 0
    assert _search(engine, tenant, "Observation", "date=gt2026-11-21") == []
    assert len(_search(engine, tenant, "Encounter", "status=finished&date=2026-11-20")) == 1
    assert len(_search(engine, tenant, "Patient", "identifier=MRN-004211")) == 1
    assert _search(engine, tenant, "Observation", "_lastUpdated=lt2026-11-24") == []
    assert len(_search(engine, tenant, "Observation", "_lastUpdated=eq2026-11-24")) > 0
    assert len(_search(engine, "another-tenant", "Observation", f"patient={patient}")) == 0


def test_search__keyset_pages_by_date__every_row_once(engine: Engine, tenant: str) -> None:
    _ingest(engine, tenant, "typical-ketamine-infusion")
    _ingest(engine, tenant, "stopped-infusion")
    query = _query("Observation", "_sort=-date&_count=4")
    seen: list[int] = []
    with engine.connect() as conn:
        snapshot = take_snapshot(conn, datetime.now(UTC))
        expected = search.total(conn, tenant, query, snapshot)
        position = None
        while True:
            rows = search.page(conn, tenant, query, snapshot, position)
            seen += [f.pk for f in rows[:4]]
            if len(rows) <= 4:
                break
            position = Position(search.sort_value(rows[3].sort_key).isoformat(), rows[3].pk)
    assert len(seen) == len(set(seen)) == expected > 8


def test_index__rewritten_on_update_and_removed_on_tombstone(engine: Engine, tenant: str) -> None:
    document = json.loads((EXAMPLES_DIR / "typical-ketamine-infusion.json").read_bytes())
    ctx = MappingContext(namespace=f"{DEFAULT_NAMESPACE}/{tenant}", tenant=tenant)
    ingest_encounter(engine, json.dumps(document).encode(), ctx, clock=lambda: T0)
    count_before = len(_search(engine, tenant, "Observation", "code=8867-4"))
    document["vitals"].pop()
    later = T0 + timedelta(minutes=5)
    ingest_encounter(engine, json.dumps(document).encode(), ctx, clock=lambda: later)
    assert len(_search(engine, tenant, "Observation", "code=8867-4")) == count_before - 1
    with engine.connect() as conn:
        orphans = conn.execute(
            select(func.count())
            .select_from(search_index)
            .join(resources, resources.c.pk == search_index.c.resource_pk)
            .where(resources.c.tenant == tenant, resources.c.deleted.is_(True))
        ).scalar_one()
    assert orphans == 0


def test_everything_and_type_history__on_this_database(engine: Engine, tenant: str) -> None:
    created = _ingest(engine, tenant, "esketamine-session")
    patient = _patient_id(created)
    with engine.connect() as conn:
        snapshot = take_snapshot(conn, datetime.now(UTC))
        (focal,) = search.by_reference(conn, tenant, [f"Patient/{patient}"])
        pks = compartment.everything(conn, tenant, focal, snapshot, None)
        refs = {f.reference for f in compartment.rows(conn, pks)}
        history = history_page(conn, tenant, "Observation", (snapshot, None), 1000, None)
        total = history_total(conn, tenant, "Observation", (snapshot, None))
    assert refs == set(created)
    assert len(history) == total == sum(ref.startswith("Observation/") for ref in created)


def test_everything__postgres__one_statement_per_hop(engine: Engine, tenant: str) -> None:
    """On PostgreSQL a hop finds every cited resource in one statement (a row-value IN),
    not one per resource type; SQLite keeps one per type (it would scan the tenant)."""
    created = _ingest(engine, tenant, "esketamine-session")
    patient = _patient_id(created)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with engine.connect() as conn:
        snapshot = take_snapshot(conn, datetime.now(UTC))
        (focal,) = search.by_reference(conn, tenant, [f"Patient/{patient}"])
        sent.clear()
        pks = compartment.everything(conn, tenant, focal, snapshot, None)
        refs = {f.reference for f in compartment.rows(conn, pks)}
    assert refs == set(created)
    cited_types = {ref.split("/")[0] for ref in created}
    if engine.dialect.name == "postgresql":
        # citing, own references, citing Provenance; per hop what is cited and its keys;
        # the snapshot's bound; the rows.
        assert len(sent) <= 3 + 2 * compartment.MAX_HOPS + 2
    else:
        assert len(sent) > len(cited_types)


def test_migration__backfills_the_index_of_resources_stored_before_it(
    engine: Engine, tenant: str
) -> None:
    _ingest(engine, tenant, "stopped-infusion")
    before = len(_search(engine, tenant, "Observation", "category=vital-signs"))
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    upgrade(engine)
    assert before > 0
    assert len(_search(engine, tenant, "Observation", "category=vital-signs")) == before


def test_search__chains_has_strings_and_modifiers__on_this_database(
    engine: Engine, tenant: str
) -> None:
    created = _ingest(engine, tenant, "typical-ketamine-infusion")
    _ingest(engine, "another-tenant", "typical-ketamine-infusion")
    patient = _patient_id(created)
    own = {f.logical_id for f in _search(engine, tenant, "Observation", f"patient={patient}")}

    chained = _search(engine, tenant, "Observation", "patient.identifier=MRN-004211")
    typed = _search(engine, tenant, "Observation", "subject:Patient.identifier=MRN-004211")

    assert own
    assert {f.logical_id for f in chained} == own == {f.logical_id for f in typed}
    assert len(_search(engine, tenant, "Patient", "family=garc&given:contains=mar")) == 1
    assert len(_search(engine, tenant, "Patient", "family:exact=García-López")) == 1
    assert _search(engine, tenant, "Patient", "family=50%_") == []
    assert len(_search(engine, tenant, "Patient", "_has:Observation:patient:code=8867-4")) == 1
    assert _search(engine, tenant, "Observation", "subject:missing=true") == []
    not_heart = _search(engine, tenant, "Observation", f"patient={patient}&code:not=8867-4")
    assert 0 < len(not_heart) < len(own)
    by_context = _search(engine, tenant, "MedicationAdministration", "context.identifier=x")
    assert by_context == []
