"""The Prometheus text exposition of the daemon's metrics."""

from __future__ import annotations

import pytest

from headwater.daemon import Metrics


def test_counters_gauges_and_histograms_render_in_the_text_format() -> None:
    metrics = Metrics()
    events = metrics.counter("hw_events_total", "Events", ("source",))
    events.labels("web").inc(3)
    events.labels('we"ird\n').inc()
    metrics.gauge("hw_bytes", "Bytes", function=lambda: 4096)
    latency = metrics.histogram("hw_seconds", "Latency", buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        latency.observe(value)
    text = metrics.render().decode()
    assert "# TYPE hw_events_total counter" in text
    assert 'hw_events_total{source="web"} 3' in text
    assert 'hw_events_total{source="we\\"ird\\n"} 1' in text
    assert "# TYPE hw_bytes gauge\nhw_bytes 4096" in text
    assert 'hw_seconds_bucket{le="0.1"} 1' in text
    assert 'hw_seconds_bucket{le="1"} 2' in text
    assert 'hw_seconds_bucket{le="+Inf"} 3' in text
    assert "hw_seconds_sum 5.55" in text
    assert "hw_seconds_count 3" in text


def test_the_same_name_returns_the_same_metric_and_kinds_cannot_clash() -> None:
    metrics = Metrics()
    assert metrics.counter("x_total", "X") is metrics.counter("x_total", "X")
    with pytest.raises(ValueError, match="already a counter"):
        metrics.gauge("x_total", "X")


def test_a_failing_gauge_does_not_break_the_scrape() -> None:
    metrics = Metrics()
    metrics.gauge("broken", "B", function=lambda: 1 / 0)
    metrics.counter("fine_total", "F").inc()
    assert "fine_total 1" in metrics.render().decode()


def test_wrong_label_count_is_an_error() -> None:
    counter = Metrics().counter("c_total", "C", ("a", "b"))
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("only-one")
