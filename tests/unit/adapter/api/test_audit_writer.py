"""The audit writer: batches what the trail submits, never drops a record for lack of room,
and retries a batch the store refuses before giving it up."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from adapter.api.middleware import audit as audit_module
from adapter.api.middleware.audit import AuditRecord, AuditWriter
from adapter.store.engine import create_store_engine, write_transaction
from adapter.store.migrate import upgrade
from adapter.store.schema import audit


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def ready() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def record(number: int) -> AuditRecord:
    return AuditRecord(
        at=datetime(2026, 11, 25, tzinfo=UTC),
        tenant="clinic-a",
        actor="key:0123abcd",
        interaction="read",
        target=f"Observation/o-{number}",
        count=1,
        outcome="200",
    )


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(audit)).scalar_one())


def test_full__submit_refuses__and_the_trail_waits_for_room_instead_of_dropping(
    engine: Engine,
) -> None:
    writer = AuditWriter(engine, ready(), capacity=100)
    for number in range(100):
        assert writer.submit(record(number))
    assert not writer.submit(record(100))  # full, and the writer is not running yet

    async def submit_while_full() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.2, writer.start)
        await writer.submit_waiting(record(100))
        return loop.time() - started

    waited = asyncio.run(submit_while_full())
    assert waited >= 0.2
    assert writer.flush(10)
    writer.stop()
    assert (writer.submitted, writer.written, writer.dropped) == (101, 101, 0)
    assert rows(engine) == 101


def test_many_records__written_in_batches__all_of_them(engine: Engine) -> None:
    writer = AuditWriter(engine, ready())
    writer.start()
    for number in range(2 * audit_module.BATCH_SIZE + 7):
        assert writer.submit(record(number))
    writer.stop()  # a clean stop writes what waits
    assert rows(engine) == 2 * audit_module.BATCH_SIZE + 7
    assert writer.dropped == 0


@contextmanager
def refusing_store(monkeypatch: pytest.MonkeyPatch, times: int) -> Iterator[list[int]]:
    """The store refuses the next `times` audit transactions (a locked or full database)."""
    attempts: list[int] = []

    @contextmanager
    def flaky(engine: Engine) -> Iterator[object]:
        attempts.append(1)
        if len(attempts) <= times:
            raise OperationalError("INSERT INTO audit", {}, Exception("database is locked"))
        with write_transaction(engine) as connection:
            yield connection

    monkeypatch.setattr(audit_module, "write_transaction", flaky)
    monkeypatch.setattr(audit_module, "RETRY_PAUSE_SECONDS", 0.0)
    yield attempts


def test_store_refuses_twice__the_batch_is_retried_and_written(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with refusing_store(monkeypatch, times=2) as attempts:
        writer = AuditWriter(engine, ready())
        writer.start()
        for number in range(3):
            writer.submit(record(number))
        assert writer.flush(10)
        writer.stop()
    assert len(attempts) == 3
    assert (writer.written, writer.dropped) == (3, 0)
    assert rows(engine) == 3
    assert "OperationalError writing 3 records (attempt 2 of 3)" in caplog.text


def test_store_refuses_every_attempt__batch_counted_as_dropped__log_names_only_counts(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with refusing_store(monkeypatch, times=audit_module.WRITE_ATTEMPTS):
        writer = AuditWriter(engine, ready())
        writer.start()
        writer.submit(record(1))
        assert writer.flush(10)
        writer.stop()
    assert (writer.written, writer.dropped) == (0, 1)
    assert rows(engine) == 0
    assert "o-1" not in caplog.text
    assert "clinic-a" not in caplog.text
