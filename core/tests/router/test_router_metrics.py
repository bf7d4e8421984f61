"""The router's figures in the daemon's Prometheus registry."""

from __future__ import annotations

import pytest

from headwater.daemon import Metrics
from headwater.log import LmdbLog
from headwater.router._export import RouterMetrics
from headwater_spec import Retry

from .conftest import Recorder, make_loop, track, wait_until

pytestmark = pytest.mark.timeout(30)


def value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_counters_start_from_the_durable_totals_and_lag_counts_parked_events(
    log: LmdbLog,
) -> None:
    log.append_sync("web", [track(i, user="a" if i < 2 else "b") for i in range(6)])
    first = make_loop(log, Recorder(), "d")
    await first.start()
    await wait_until(lambda: first.state is not None and first.state.cursor == 7)
    await first.stop()

    log.append_sync("web", [track(10, user="a")])
    registry = Metrics()
    metrics = RouterMetrics(registry)
    dest = Recorder(lambda batch: [Retry(reason="HTTP 503")] * len(batch))
    loop = make_loop(log, dest, "d")
    await loop.start()
    metrics.bind(loop)
    try:
        await wait_until(lambda: loop.pending == 1)
        metrics.refresh([loop])
        text = registry.render().decode()
    finally:
        await loop.stop()
    assert value(text, 'headwater_destination_delivered_total{destination="d"}') == 6
    assert value(text, 'headwater_destination_retried_total{destination="d"}') >= 1
    assert value(text, 'headwater_destination_pending_retries{destination="d"}') == 1
    assert value(text, 'headwater_destination_lag_events{destination="d"}') == 0
    assert value(text, 'headwater_destination_lag_seconds{destination="d"}') > 0
    assert value(text, 'headwater_destination_send_seconds_count{destination="d"}') >= 1
