"""The queue a process's threads take turns in for a SQLite store's one write lock.

SQLite lets one connection write at a time. A thread that finds the lock taken does not
wait on it: SQLite's busy handler puts it to sleep for 1, 2, 5, ... up to 100 ms and tries
again, so a writer that frees the lock after a millisecond can leave the next one asleep
for much longer, and threads that write back to back can keep one out until its busy
timeout ends ("database is locked").

`bench/sqlite_writers.py` measures it: two threads writing through `write_transaction` (20
rows each, 2 ms apart) beside a third that probes; without the queue the probe's wait had a
p99 of 19-79 ms (maximum 105 ms), with it 1.2-10.5 ms, in the same runs. With the two
writing back to back, without the queue the probe's p90 was 2.2 s and some of its tries
failed after the 5 s timeout; with it its p99 was 5.6 ms and none failed.

So the threads of one process first queue here, first come first served, and only the
head of the queue asks SQLite for the lock; it is woken the moment the writer before it is
done. Other processes on the same file (the worker beside the service) still meet SQLite's
own busy handling, as before. PostgreSQL locks rows, not the database, and needs none of it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import TimeoutError as StoreTimeout


class WriterQueue:
    """A first-come-first-served lock with a timeout (not reentrant)."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._changed = threading.Condition(threading.Lock())
        self._waiting: deque[object] = deque()
        self._held = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block; `StoreTimeout` (a `StoreError`, answered 503 like a
        locked database) when it did not come within the timeout."""
        if not self._acquire():
            raise StoreTimeout(
                f"no turn at the store's write lock within {self.timeout_seconds:g} s"
            )
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> bool:
        me = object()
        deadline = time.monotonic() + self.timeout_seconds
        with self._changed:
            self._waiting.append(me)
            while self._held or self._waiting[0] is not me:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(me)
                    self._changed.notify_all()  # the next in line may be the head now
                    return False
                self._changed.wait(left)
            self._waiting.popleft()
            self._held = True
            return True

    def _release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()
