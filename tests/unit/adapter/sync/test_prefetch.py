"""Pages fetched ahead in a helper thread: order kept, errors raised where iterated, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from adapter.sync.pull.prefetch import Prefetch


def test_prefetch__yields_every_item_in_order() -> None:
    with Prefetch(iter(range(50)), depth=3) as ahead:
        assert list(ahead) == list(range(50))


def test_prefetch__error_while_fetching__raised_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ConnectionError("the EHR went away")

    seen: list[int] = []
    with Prefetch(failing(), depth=2) as ahead, pytest.raises(ConnectionError):
        seen.extend(ahead)
    assert seen == [1, 2]


def test_prefetch__fetches_at_most_depth_ahead_and_says_when_ready() -> None:
    fetched: list[int] = []

    def counting() -> Iterator[int]:
        for n in range(100):
            fetched.append(n)
            yield n

    with Prefetch(counting(), depth=3) as ahead:
        items = iter(ahead)
        assert next(items) == 0
        deadline = time.monotonic() + 30
        while len(fetched) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ahead.ready()
        # One taken, three waiting, one more fetched and held until there is room.
        assert len(fetched) <= 5


def test_prefetch__closed_early__the_helper_thread_ends() -> None:
    ahead = Prefetch(iter(range(1000)), depth=2, name="prefetch-under-test")
    assert next(iter(ahead)) == 0
    ahead.close()
    deadline = time.monotonic() + 30
    while any(t.name == "prefetch-under-test" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the helper thread kept running"
        time.sleep(0.01)
