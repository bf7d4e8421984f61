"""Redrive on LMDB re-queues dead letters a chunk at a time as the destination has room, so
memory does not grow with the dead-letter table; every dead letter is delivered once; a
daemon killed mid-redrive loses none and finishes after a restart."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headwater.config import Config, ConnectorInstance
from headwater.log import LmdbLog, now_us
from headwater.plugins import load_plugins
from headwater.router import (
    DEAD_LETTERS,
    RETRIES,
    BatchLimits,
    DeliverySettings,
    DestinationLoop,
    InstanceContext,
    Router,
    count_dead_letters,
    request_redrive,
)
from headwater.router._records import (
    DESTINATIONS,
    cursor_name,
    encode,
    event_key,
    event_prefix,
    redriving_key,
)
from headwater.testing import DaemonProcess, daemon_config, wait_until
from headwater.testing_webhook import SinkProcess, WebhookSink

from .conftest import FAST
from .test_router_dlq_pages import letter

pytestmark = pytest.mark.timeout(300)

LETTERS = 20_000
WINDOW = 500
PAD = 1_000


def fill(log: LmdbLog, destination: str, count: int, pad: int = PAD) -> int:
    """``count`` events in the log, the destination's cursor past them, and each one a dead
    letter (as if a broken endpoint had refused them all); return the table's bytes."""
    log.append_sync("web", [{"type": "track", "messageId": f"x{i}"} for i in range(count)])
    log.set_cursor(cursor_name(destination), log.last_seq() + 1)
    at = now_us()
    size = 0
    for first in range(1, count + 1, 1000):
        ops: list[tuple[bytes, bytes, bytes | None]] = []
        for seq in range(first, min(first + 1000, count + 1)):
            event = {
                "type": "track",
                "event": "E",
                "messageId": f"m{seq}",
                "userId": f"u{seq % 50}",
                "properties": {"pad": "x" * pad},
            }
            raw = encode(letter(destination, seq, at, event=event))
            size += len(raw)
            ops.append((DEAD_LETTERS, event_key(destination, seq), raw))
        log.write_batch(ops)
    return size


def redrive_done(log: LmdbLog, destination: str) -> bool:
    return (
        log.get_value(DESTINATIONS, redriving_key(destination)) is None
        and count_dead_letters(log, destination) == 0
        and log.count(RETRIES, event_prefix(destination)) == 0
    )


async def test_redrive_of_20k_dead_letters_delivers_each_once_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = LmdbLog(tmp_path / "log", sync=False)
    table = fill(log, "hook", LETTERS)
    request_redrive(log, "hook")  # as `headwater dlq redrive` does before a start
    sink = SinkProcess(tmp_path / "sink.json")
    hook = ConnectorInstance(
        id="hook", kind="destination", connector="webhook",
        options={"url": f"{sink.url}/h"}, start="beginning",
    )  # fmt: skip
    config = Config(destinations={"hook": hook})
    config.workspace.data_dir = str(tmp_path)
    router = Router(
        log,
        config,
        load_plugins(),
        base_settings=DeliverySettings(
            limits=BatchLimits(max_count=200, linger=0.0), concurrency=4, policy=FAST,
            poll_interval=0.05, redrive_interval=0.05, max_in_flight=WINDOW,
        ),
        context_factory=lambda i: InstanceContext(i.id, "us", tmp_path, i.endpoint),
    )  # fmt: skip
    parked: list[int] = []
    original = DestinationLoop._park_entry

    def park(self: DestinationLoop, pending: Any, size: int) -> None:
        original(self, pending, size)
        parked.append(self.pending)

    monkeypatch.setattr(DestinationLoop, "_park_entry", park)
    tracemalloc.start()
    try:
        await router.start()
        try:
            deadline = asyncio.get_running_loop().time() + 240
            while not redrive_done(log, "hook"):
                assert asyncio.get_running_loop().time() < deadline, count_dead_letters(log, "hook")
                await asyncio.sleep(0.1)
            status = router.status()[0]
        finally:
            await router.stop()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        arrivals = sink.arrivals()
        log.close()

    counts = Counter(arrivals)
    assert len(counts) == LETTERS and set(counts.values()) == {1}
    assert set(counts) == {f"m{seq}" for seq in range(1, LETTERS + 1)}
    assert status.redriven == LETTERS and status.delivered == LETTERS
    assert status.dead_letters == 0 and status.pending_retries == 0
    # never more parked than the window holds, so memory does not follow the table
    assert len(parked) == LETTERS and max(parked) <= WINDOW
    assert peak < table / 4, (peak, table)


def test_daemon_killed_mid_redrive_loses_no_dead_letter_and_finishes_after_restart(
    headwater_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    count = 10_000
    with WebhookSink(keep=False) as sink:
        daemon = headwater_daemon(
            daemon_config(
                f"""
[destinations.hook]
connector = "webhook"
url = "{sink.url}/hook"
start = "beginning"
"""
            )
        )
        daemon.stop()  # fill its log while no daemon has it open
        with LmdbLog(daemon.data_dir, sync=False) as log:
            fill(log, "hook", count, pad=100)
        redrive = daemon.cli("dlq", "redrive", "hook", "--data-dir", str(daemon.data_dir))
        assert redrive.returncode == 0 and "next starts" in redrive.stdout, redrive.stderr
        # at most 100 a second per batch of 100: the kill lands well before the end
        sink.behaviour = lambda request, events: time.sleep(0.01)
        daemon.start()  # takes the request up at start
        wait_until(lambda: sink.events_delivered >= count // 4, timeout=120, interval=0.01)
        daemon.kill9()
        delivered = set(sink.delivered_ids())
        assert len(delivered) < count  # killed mid-redrive
        with daemon.open_log() as log:
            letters = {key for key, _ in log.items(DEAD_LETTERS, event_prefix("hook"))}
            retries = {key for key, _ in log.items(RETRIES, event_prefix("hook"))}
            redriving = log.get_value(DESTINATIONS, redriving_key("hook"))
        assert redriving is not None and letters and not letters & retries
        # each event is still a dead letter, a parked retry, or was delivered
        waiting = {f"m{int.from_bytes(key[-8:], 'big')}" for key in letters | retries}
        assert waiting | delivered == {f"m{seq}" for seq in range(1, count + 1)}

        sink.behaviour = None
        daemon.start()
        wait_until(lambda: len(set(sink.delivered_ids())) == count, timeout=120)
        with daemon.open_log() as log:
            wait_until(lambda: redrive_done(log, "hook"), timeout=30)
    counts = Counter(sink.delivered_ids())
    assert set(counts) == {f"m{seq}" for seq in range(1, count + 1)}
    # at least once: only what was in flight at the kill (at most the daemon's window of
    # 2048 events) came twice
    assert sum(n - 1 for n in counts.values()) <= 2048
