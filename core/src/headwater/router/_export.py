"""The router's figures in the daemon's Prometheus registry.

Per destination (label ``destination``): delivered, retried, dead-lettered and filtered
events and failed delivery tasks (counters, lifetime totals that survive restarts because
they come from the destination's durable record), lag in events and seconds and parked
retries (gauges, refreshed every second), and send latency (histogram).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from ._delivery import DestinationLoop
from ._state import Counter


class _Child(Protocol):
    value: float


class _Family(Protocol):
    def labels(self, *values: str) -> _Child: ...


class _HistogramChild(Protocol):
    def observe(self, value: float) -> None: ...


class _HistogramFamily(Protocol):
    def labels(self, *values: str) -> _HistogramChild: ...


class MetricsRegistry(Protocol):
    """What the daemon's ``Metrics`` offers (structurally)."""

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> _Family: ...

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> _Family: ...

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = ()
    ) -> _HistogramFamily: ...


_COUNTERS: dict[Counter, str] = {
    "delivered": "Events the destination accepted",
    "retried": "Failed attempts that were scheduled for another try",
    "dead_lettered": "Events moved to the dead-letter table",
    "filtered": "Events skipped by the destination's filters",
    "redriven": "Dead letters re-queued for delivery",
    "task_failures": "Delivery tasks that failed (the loop restarted from its cursor)",
}
_LABELS = ("destination",)


class RouterMetrics:
    def __init__(self, registry: MetricsRegistry) -> None:
        self.counters = {
            name: registry.counter(f"headwater_destination_{name}_total", help, _LABELS)
            for name, help in _COUNTERS.items()
        }
        self.lag_events = registry.gauge(
            "headwater_destination_lag_events", "Log events not yet past the cursor", _LABELS
        )
        self.lag_seconds = registry.gauge(
            "headwater_destination_lag_seconds",
            "Age of the oldest event not yet finished (at the cursor, or parked for a retry)",
            _LABELS,
        )
        self.pending = registry.gauge(
            "headwater_destination_pending_retries", "Events parked for another attempt", _LABELS
        )
        self.latency = registry.histogram(
            "headwater_destination_send_seconds", "Time one send (one batch) took", _LABELS
        )

    def bind(self, loop: DestinationLoop) -> None:
        """Mirror the loop's counters (starting from their durable totals) and latency."""
        state = loop.state
        assert state is not None
        children = {name: family.labels(loop.id) for name, family in self.counters.items()}
        record = state.record
        for name, child in children.items():
            child.value = float(getattr(record, name))

        def on_count(counter: Counter, n: int) -> None:
            children[counter].value += n

        state.on_count = on_count
        loop.on_latency = self.latency.labels(loop.id).observe

    def refresh(self, current: Iterable[DestinationLoop]) -> None:
        loops = list(current)  # the router's live view: destinations come and go on reload
        if not loops:
            return
        log = loops[0].log
        last = log.last_seq()
        now = time.time_ns() // 1000
        for loop in loops:
            state = loop.state
            if state is None:
                continue
            cursor = state.cursor
            lag = max(0, last - cursor + 1)
            oldest = loop.oldest_pending_received()
            if lag:
                head = log.get(cursor)
                if head is not None and (oldest is None or head.received_at < oldest):
                    oldest = head.received_at
            age = max(0.0, (now - oldest) / 1e6) if oldest is not None else 0.0
            self.lag_events.labels(loop.id).value = lag
            self.lag_seconds.labels(loop.id).value = age
            self.pending.labels(loop.id).value = loop.pending

    async def run(self, loops: Iterable[DestinationLoop], interval: float = 1.0) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.refresh(loops)
            await asyncio.sleep(interval)
