"""A tenant's namespace is fixed once, also when two of its first documents arrive at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from adapter.errors import StoreUnavailable
from adapter.store.schema import tenants
from adapter.store.tenants import pin, pinned_namespace
from mappings.context import MappingContext

T0 = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
WAIT_SECONDS = 60.0


def _rows(engine: Engine, tenant: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(tenants).where(tenants.c.tenant == tenant)
            ).scalar_one()
        )


def test_pin__twice__one_row_and_the_first_namespace(engine: Engine, tenant: str) -> None:
    ctx = MappingContext(namespace="https://fhir.a.example", tenant=tenant)
    for _ in range(2):
        with engine.begin() as conn:
            pin(conn, ctx, T0)
    other = MappingContext(namespace="https://fhir.b.example", tenant=tenant)
    with pytest.raises(StoreUnavailable), engine.begin() as conn:
        pin(conn, other, T0)
    with engine.connect() as conn:
        assert pinned_namespace(conn, tenant) == "https://fhir.a.example"
    assert _rows(engine, tenant) == 1


@pytest.mark.parametrize(
    ("second_namespace", "second_fails"),
    [("https://fhir.a.example", False), ("https://fhir.b.example", True)],
)
def test_pin__two_first_documents_at_once__postgresql__the_second_waits_and_agrees(
    engine: Engine, tenant: str, second_namespace: str, second_fails: bool
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time")
    first = MappingContext(namespace="https://fhir.a.example", tenant=tenant)
    second = MappingContext(namespace=second_namespace, tenant=tenant)
    outcome: list[BaseException | None] = []

    def second_document() -> None:
        try:
            with engine.begin() as conn:
                pin(conn, second, T0)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 (the test reads what happened)
            outcome.append(exc)

    with engine.begin() as conn:
        pin(conn, first, T0)
        racing = threading.Thread(target=second_document)
        racing.start()
        racing.join(1.0)  # it cannot finish before this transaction ends: its insert waits
        assert racing.is_alive()
    racing.join(WAIT_SECONDS)
    assert not racing.is_alive()
    if second_fails:
        assert isinstance(outcome[0], StoreUnavailable)
    else:
        assert outcome == [None]
    assert _rows(engine, tenant) == 1
