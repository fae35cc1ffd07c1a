"""Pages fetched ahead, in a helper thread, while the caller merges the ones it has.

The EHR's time per page and ours overlap; and since pages that are already here can be
merged together, in one transaction, a pull commits less often when the EHR is faster
than the store (`ready()` says whether the next page is waiting). Only the helper thread
ever advances the page iterator. At most `depth` pages wait, so memory stays flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_SECONDS = 0.1


class Prefetch(Generic[T]):
    """Iterates `items`, fetching up to `depth` ahead; `close()` when done (or use `with`)."""

    def __init__(self, items: Iterator[T], depth: int, name: str = "adapter-prefetch") -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(items,), name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, value = self._queue.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "end":
                return
            else:
                assert isinstance(value, BaseException)
                raise value

    def ready(self) -> bool:
        """True when the next item (or the end) is already here."""
        return not self._queue.empty()

    def close(self) -> None:
        """Stop fetching; a request under way ends within its own timeout, unused."""
        self._stop.set()

    def _fill(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put("item", item):
                    return
            self._put("end", None)
        except BaseException as exc:  # handed to the caller, raised where it iterates
            self._put("error", exc)

    def _put(self, kind: str, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
