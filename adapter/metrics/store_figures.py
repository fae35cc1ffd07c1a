"""The figures read from the store at each scrape: the outbox by state and its oldest
waiting entry's age, dead letters, open conflicts, and the pull's lag per resource type.

Read at scrape time rather than counted: every process (and `adapter worker` elsewhere)
changes the store, and the store is the one place that knows the sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapter.store import operations
from adapter.store.engine import Engine, StoreError
from adapter.store.outbox import CONFLICT, DEAD, DONE, IN_FLIGHT, PENDING

STATES = (PENDING, IN_FLIGHT, DONE, DEAD, CONFLICT)


class StoreFigures(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                outbox = operations.outbox_figures(conn)
                conflicts = operations.open_conflict_count(conn)
                channels = operations.pull_channels(conn)
        except StoreError:
            yield GaugeMetricFamily("adapter_store_up", "Whether the store answered", 0)
            return
        now = self.clock()
        yield GaugeMetricFamily("adapter_store_up", "Whether the store answered", 1)
        entries = GaugeMetricFamily(
            "adapter_outbox_entries", "Outbox entries by state", labels=["state"]
        )
        for state in STATES:
            entries.add_metric([state], outbox.by_state.get(state, 0))
        yield entries
        oldest = outbox.oldest_waiting
        yield GaugeMetricFamily(
            "adapter_outbox_oldest_waiting_age_seconds",
            "Age of the oldest entry waiting to be pushed (0: none waits)",
            (now - oldest).total_seconds() if oldest is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "adapter_dead_letters", "Outbox entries the EHR refused", outbox.by_state.get(DEAD, 0)
        )
        yield GaugeMetricFamily(
            "adapter_open_conflicts",
            "Conflicts waiting for an operator (pull) plus outbox entries parked on one",
            conflicts + outbox.by_state.get(CONFLICT, 0),
        )
        yield _pull_lag(channels, now)


def _pull_lag(channels: list[operations.PullChannel], now: datetime) -> GaugeMetricFamily:
    """Per channel (`Patient`, `history/Observation`), how far behind now its cursor is:
    the worst over tenants."""
    worst: dict[str, float] = {}
    for channel in channels:
        if channel.cursor is not None:
            lag = (now - channel.cursor).total_seconds()
            worst[channel.channel] = max(lag, worst.get(channel.channel, lag))
    family = GaugeMetricFamily(
        "adapter_pull_lag_seconds",
        "How far behind now a pull channel's cursor is",
        labels=["channel"],
    )
    for name, lag in sorted(worst.items()):
        family.add_metric([name], lag)
    return family
