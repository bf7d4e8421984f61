"""Prometheus metrics: counters, gauges and histograms, rendered in the text format 0.0.4.

A few dozen lines instead of `prometheus_client`: the daemon needs labelled counters,
gauges read at scrape time and latency histograms, and nothing else (no multiprocess
mode, no registry collectors). A labelled child is looked up once and kept by the caller,
so the hot path costs an attribute add.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Child = TypeVar("Child")
M = TypeVar("M", bound="_Metric[Any]")

DEFAULT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class GaugeChild(CounterChild):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = value

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class _Metric(Generic[Child]):
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Child] = {}

    def _new(self) -> Child:
        raise NotImplementedError

    def labels(self, *values: str) -> Child:
        """The child for these label values (created on first use)."""
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self.children[values] = self._new()
        return child

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric[CounterChild]):
    kind = "counter"

    def _new(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def render(self) -> list[str]:
        lines = self.header()
        for values, child in sorted(self.children.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, values)} {_num(child.value)}")
        return lines


class Gauge(_Metric[GaugeChild]):
    """A gauge; with ``function`` it is read when scraped (log size, queue depth)."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        function: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help, labelnames)
        self.function = function

    def _new(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self.labels().set(value)

    def render(self) -> list[str]:
        lines = self.header()
        if self.function is not None:
            lines.append(f"{self.name} {_num(float(self.function()))}")
            return lines
        for values, child in sorted(self.children.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, values)} {_num(child.value)}")
        return lines


class Histogram(_Metric[HistogramChild]):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help, labelnames)
        self.bounds = tuple(sorted(buckets))

    def _new(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def render(self) -> list[str]:
        lines = self.header()
        for values, child in sorted(self.children.items()):
            running = 0
            for bound, n in zip((*self.bounds, math.inf), child.counts, strict=True):
                running += n
                le = f'le="{_num(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, values, le)} {running}")
            labels = _labels(self.labelnames, values)
            lines.append(f"{self.name}_sum{labels} {_num(child.sum)}")
            lines.append(f"{self.name}_count{labels} {child.count}")
        return lines


class Metrics:
    """The daemon's metric registry: services add theirs with ``counter``/``gauge``/...;
    asking twice for the same name returns the same metric."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric[Any]] = {}

    def _get(self, cls: type[M], name: str, *args: Any) -> M:
        found = self._metrics.get(name)
        if found is None:
            found = self._metrics[name] = cls(name, *args)
        if not isinstance(found, cls):
            raise ValueError(f"metric {name} is already a {found.kind}")
        return found

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, help, labelnames)

    def gauge(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        function: Callable[[], float] | None = None,
    ) -> Gauge:
        return self._get(Gauge, name, help, labelnames, function)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._get(Histogram, name, help, labelnames, buckets)

    def render(self) -> bytes:
        """The exposition text of every metric; a failing gauge function is skipped."""
        lines: list[str] = []
        for metric in self._metrics.values():
            try:
                lines.extend(metric.render())
            except Exception:  # a scrape must not fail because one gauge could not be read
                continue
        return ("\n".join(lines) + "\n").encode("utf-8")
