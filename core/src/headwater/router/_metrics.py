"""Per-destination measurements that live only as long as the process: send latency.

Counters (delivered, retried, dead-lettered, ...) are lifetime totals kept in the
destination's durable record instead, so they survive restarts and the CLI can read them.
"""

from __future__ import annotations

import bisect

import msgspec

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram(msgspec.Struct, kw_only=True):
    """A Prometheus-style histogram: cumulative counts per upper bound, plus sum and count."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = msgspec.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs as Prometheus exposes them, ending with "+Inf"."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
