"""Isolation: a black-holed destination (accepts connections, never answers) must not hold
back another destination of the same daemon.

The daemon has a backlog of 100k events for two webhook destinations: a healthy receiver
and a black hole with a 300 s timeout. The healthy one must get the whole backlog while
the black-holed one has not had a single answer: if the healthy destination waited on the
other anywhere (a shared lane, a shared commit, the event loop), it would wait out that
timeout and the test's own. How much the black hole costs the healthy destination's
throughput is a figure, printed by ``benchmarks/bench_isolation.py`` beside a solo run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from headwater.log import LmdbLog
from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import BlackHole, WebhookSink

EVENTS = 100_000


def event(n: int) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n % 500}",
        "messageId": f"iso-{n}",
        "properties": {"order": n, "revenue": 9.5},
    }


def config(healthy: str, black_hole: str) -> str:
    return f"""
[workspace]
name = "isolation"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[destinations.healthy]
connector = "webhook"
url = "{healthy}/hook"
start = "beginning"

[destinations.stuck]
connector = "webhook"
url = "{black_hole}/hook"
start = "beginning"
timeout = 300
"""


@pytest.mark.timeout(280)  # under the black hole's timeout: waiting on it fails the test
def test_a_black_holed_destination_does_not_hold_back_a_healthy_one(tmp_path: Path) -> None:
    with WebhookSink(keep=False) as sink, BlackHole() as hole:
        daemon = DaemonProcess(config(sink.url, hole.url), tmp_path)
        with LmdbLog(daemon.data_dir) as log:
            for first in range(0, EVENTS, 2000):
                log.append_sync("web", [event(n) for n in range(first, first + 2000)])
        daemon.start()
        try:
            sink.wait_for_events(EVENTS, timeout=240)

            def stuck() -> dict[str, Any]:
                with daemon.client() as client:
                    response = client.get(
                        "/admin/destinations/stuck", headers=daemon.admin_headers()
                    )
                status: dict[str, Any] = response.json()
                return status

            deadline = time.monotonic() + 30
            while hole.accepted == 0:  # the stuck one did try: its requests are out
                assert time.monotonic() < deadline, "the stuck destination never connected"
                time.sleep(0.05)
            status = stuck()
            assert status["delivered"] == 0 and status["retried"] == 0, status
            assert status["lag_events"] == EVENTS, status
        finally:
            daemon.stop()
        assert sink.events_delivered == EVENTS
        assert sorted(sink.delivered_ids()) == sorted(f"iso-{n}" for n in range(EVENTS))
