"""The writers' queue of a SQLite store: turns in arrival order, a timeout that is a store
error, and `write_transaction` taking its turn there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from adapter.store import engine as store_engine
from adapter.store.engine import StoreError, create_store_engine, write_transaction
from adapter.store.writer_queue import WriterQueue

DEADLINE = 30.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _queued(queue: WriterQueue, count: int) -> None:
    _until(lambda: len(queue._waiting) == count, f"{count} writer(s) queued")


def test_writer_queue__waiters_get_their_turns_in_the_order_they_asked() -> None:
    queue = WriterQueue(timeout_seconds=DEADLINE)
    order: list[int] = []
    holding = queue.turn()
    holding.__enter__()

    def writer(n: int) -> None:
        with queue.turn():
            order.append(n)

    threads = []
    for n in range(5):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        _queued(queue, n + 1)
    holding.__exit__(None, None, None)
    for thread in threads:
        thread.join(DEADLINE)
    assert order == [0, 1, 2, 3, 4]


def test_writer_queue__a_turn_not_come_in_time_is_a_store_error_and_leaves_the_queue() -> None:
    queue = WriterQueue(timeout_seconds=0.05)
    late = "no turn at the store's write lock within 0.05 s"
    with queue.turn():
        with pytest.raises(StoreError, match=late), queue.turn():
            pass  # pragma: no cover - never reached
        assert not queue._waiting
    with queue.turn():  # the one that gave up holds nothing up
        pass


def test_writer_queue__one_that_gives_up_behind_another_lets_the_next_one_through() -> None:
    queue = WriterQueue(timeout_seconds=DEADLINE)
    got: list[str] = []
    holding = queue.turn()
    holding.__enter__()
    impatient = WriterQueue.__new__(WriterQueue)  # shares the queue with a short timeout
    impatient.__dict__ = dict(queue.__dict__, timeout_seconds=0.2)
    failed = threading.Event()

    def gives_up() -> None:
        try:
            with impatient.turn():
                got.append("impatient")  # pragma: no cover - never reached
        except StoreError:
            failed.set()

    def waits() -> None:
        with queue.turn():
            got.append("patient")

    first = threading.Thread(target=gives_up)
    first.start()
    _queued(queue, 1)
    second = threading.Thread(target=waits)
    second.start()
    _queued(queue, 2)
    first.join(DEADLINE)
    assert failed.is_set()
    holding.__exit__(None, None, None)
    second.join(DEADLINE)
    assert got == ["patient"]


def test_write_transaction__sqlite_writers_of_one_process_take_turns_in_order(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    queue = store_engine._WRITERS[engine]
    release = threading.Event()

    def first() -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (0)"))
            release.wait(DEADLINE)

    def writer(n: int) -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    holder = threading.Thread(target=first)
    holder.start()
    _until(lambda: queue._held, "the first writer holds the turn")
    threads = []
    for n in range(1, 4):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        _queued(queue, n)
    release.set()
    for thread in [holder, *threads]:
        thread.join(DEADLINE)
    with engine.connect() as conn:
        assert [row.n for row in conn.execute(text("SELECT n FROM t ORDER BY rowid"))] == [
            0,
            1,
            2,
            3,
        ]
    engine.dispose()


def test_write_transaction__a_failed_transaction_gives_its_turn_back(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(StoreError), write_transaction(engine) as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not store_engine._WRITERS[engine]._held
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    engine.dispose()
