"""Isolation: a black-holed destination (accepts connections, never answers) must not slow
another destination of the same daemon.

The daemon delivers a backlog of 100k events to a healthy webhook receiver, alone and then
beside a second webhook destination pointed at a black hole; the healthy destination's
throughput (first to last event at the receiver) must stay within 20% of its solo run.
Timing on a shared 2-core machine is noisy: other processes only ever slow a run down,
so solo and paired runs alternate over several rounds and the fastest run of each kind (the
best estimate of what the daemon itself does) are compared; the medians are printed too.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import pytest

from headwater.log import LmdbLog
from headwater.testing import DaemonProcess
from headwater.testing_webhook import BlackHole, WebhookSink

EVENTS = 100_000
ROUNDS = 5


def event(n: int) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n % 500}",
        "messageId": f"iso-{n}",
        "properties": {"order": n, "revenue": 9.5},
    }


def config(healthy: str, black_hole: str | None) -> str:
    text = f"""
[workspace]
name = "isolation"

[destinations.healthy]
connector = "webhook"
url = "{healthy}/hook"
start = "beginning"
"""
    if black_hole:
        text += f"""
[destinations.stuck]
connector = "webhook"
url = "{black_hole}/hook"
start = "beginning"
timeout = 30
"""
    return text


def run_once(template: Path, workdir: Path, with_black_hole: bool) -> float:
    """Events/s the healthy destination received, first to last event."""
    with WebhookSink(keep=False) as sink, BlackHole() as hole:
        daemon = DaemonProcess(config(sink.url, hole.url if with_black_hole else None), workdir)
        shutil.copytree(template, daemon.data_dir / "log")
        daemon.start()
        try:
            sink.wait_for_events(EVENTS, timeout=240)
        finally:
            daemon.stop()
        assert sink.events_delivered == EVENTS
        return EVENTS / (sink.last_at - sink.first_at)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_black_holed_destination_leaves_the_healthy_ones_throughput(tmp_path: Path) -> None:
    template_dir = tmp_path / "template"
    log = LmdbLog(template_dir)
    for first in range(0, EVENTS, 2000):
        log.append_sync("web", [event(n) for n in range(first, first + 2000)])
    log.close()
    solo: list[float] = []
    paired: list[float] = []
    for round_ in range(ROUNDS):
        order = (False, True) if round_ % 2 == 0 else (True, False)  # cancel drift
        for with_black_hole in order:
            workdir = tmp_path / f"run{round_}-{int(with_black_hole)}"
            rate = run_once(template_dir / "log", workdir, with_black_hole)
            (paired if with_black_hole else solo).append(rate)
    ratio = max(paired) / max(solo)
    medians = statistics.median(paired) / statistics.median(solo)
    shown = (
        f"solo {[round(r) for r in solo]} events/s, beside a black hole "
        f"{[round(r) for r in paired]}: best/best {ratio:.2f}, median/median {medians:.2f}"
    )
    print(f"healthy destination: {shown}")
    assert ratio >= 0.8, shown
