"""Isolation: a healthy destination's throughput beside a black-holed one, against its
throughput alone, in the same run.

`headwater serve` (a subprocess) delivers a backlog of ``BENCH_EVENTS`` events to a
webhook receiver that answers 200 at once: once alone (**solo**, the baseline) and once
beside a second webhook destination pointed at a black hole that accepts connections and
never answers (**paired**). Throughput is first to last event at the receiver. Solo and
paired runs alternate over ``BENCH_ROUNDS`` rounds (other processes only ever slow a run
down, so the order is swapped each round to cancel drift); printed: each run's events/s,
and best/best and median/median of paired over solo (target: >= 0.8, i.e. the black hole
costs the healthy destination under 20%).

The test (``tests/test_delivery_isolation.py``) checks the behaviour without timing: the
healthy destination gets the whole backlog while the black-holed one has no answer yet.

Run: ``uv run python benchmarks/bench_isolation.py`` (about a minute). Environment:
``BENCH_EVENTS`` (default 100000), ``BENCH_ROUNDS`` (5), ``BENCH_DIR`` (a real disk;
default a temp dir).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

from headwater.log import LmdbLog
from headwater.testing import DaemonProcess
from headwater.testing_webhook import BlackHole, WebhookSink

EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


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
        return EVENTS / (sink.last_at - sink.first_at)


def main() -> None:
    base = os.environ.get("BENCH_DIR")
    root = Path(tempfile.mkdtemp(prefix="hw-bench-isolation-", dir=base))
    try:
        template = root / "template"
        log = LmdbLog(template)
        for first in range(0, EVENTS, 2000):
            log.append_sync("web", [event(n) for n in range(first, min(first + 2000, EVENTS))])
        log.close()
        solo: list[float] = []
        paired: list[float] = []
        for round_ in range(ROUNDS):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for with_black_hole in order:
                workdir = root / f"run{round_}-{int(with_black_hole)}"
                rate = run_once(template / "log", workdir, with_black_hole)
                (paired if with_black_hole else solo).append(rate)
                kind = "paired" if with_black_hole else "solo  "
                print(f"round {round_ + 1}/{ROUNDS} {kind} {rate:>9,.0f} events/s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best = max(paired) / max(solo)
    median = statistics.median(paired) / statistics.median(solo)
    print(f"\n{EVENTS:,} events to a healthy webhook, {ROUNDS} rounds")
    for name, rates in (("solo (baseline)", solo), ("beside a black hole", paired)):
        middle = statistics.median(rates)
        print(f"  {name:<22} best {max(rates):>9,.0f}/s  median {middle:>9,.0f}/s")
    print(f"  {'paired / solo':<22} best/best {best:.2f}  median/median {median:.2f}", end="")
    print("  (target >= 0.80)")


if __name__ == "__main__":
    main()
