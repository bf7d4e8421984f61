"""A replay job with many parked retries (a JetStream redrive's job holds every dead letter
as one) loads them into its lanes a chunk at a time as they have room, in seq order: the
lanes never park much more than a window, every event is delivered exactly once, in
per-user order, and the reader still skips the seqs whose retry is parked."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import headwater.replay._run as replay_run
from headwater.log import AnyLog, LmdbLog, now_us
from headwater.plugins import load_plugins
from headwater.replay import ReplayJob, ReplayRun, load_job, save_job
from headwater.replay._records import cursor_name, retry_namespace
from headwater.router import RETRIES, BatchLimits, DeliverySettings, InstanceContext
from headwater.router._records import PendingRecord, encode, event_key, event_prefix
from headwater.testing_webhook import SinkProcess, WebhookSink
from headwater_spec import Destination

from .conftest import FAST

pytestmark = pytest.mark.timeout(300)

WINDOW = 500
PARKED = {"lmdb": 20_000, "jetstream": 4_000}
"""Retries parked before the start (JetStream writes and pages its keys one by one)."""
READ = 500
"""Events of the range past the retries, read by the job's reader."""


def event(seq: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "E",
        "messageId": f"m{seq}",
        "userId": f"u{seq % 50}",
        "properties": {"pad": "x" * 200},
    }


def park_retries(log: AnyLog, job_id: str, seqs: range) -> None:
    """The events' retries in the job's namespace, as a stopped run (or a JetStream
    redrive) leaves them: due at once, a chunk per write, highest seqs first (so key order
    differs from write order on JetStream)."""
    namespace = retry_namespace(job_id)
    at = now_us()
    ops: list[tuple[bytes, bytes, bytes | None]] = []
    for seq in reversed(seqs):
        pending = PendingRecord(
            seq=seq, user=f"u{seq % 50}", source="web", received_at=at, event=event(seq)
        )
        ops.append((RETRIES, event_key(namespace, seq), encode(pending)))
        if len(ops) == 1000:
            log.write_batch(ops)
            ops = []
    if ops:
        log.write_batch(ops)


def per_user(ids: list[str]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for mid in ids:
        seq = int(mid[1:])
        out.setdefault(seq % 50, []).append(seq)
    return out


def prepare(log: AnyLog, parked_count: int) -> ReplayJob:
    """``parked_count`` retries and ``READ`` more events in the job's range; the first half
    of the retries lies behind the job's cursor (parked before a stop), the second half at
    or past it: the reader must skip those seqs, not send them again."""
    total = parked_count + READ
    for first in range(1, total + 1, 1000):
        log.append_sync("web", [event(s) for s in range(first, min(first + 1000, total + 1))])
    assert log.last_seq() == total
    log.set_cursor(cursor_name("1"), parked_count // 2 + 1)
    park_retries(log, "1", range(1, parked_count + 1))
    job = ReplayJob(id="1", destination="hook", first_seq=1, last_seq=total, state="running")
    save_job(log, job)
    return job


def replay_run_to(log: AnyLog, job: ReplayJob, url: str, tmp_path: Path) -> ReplayRun:
    loaded = load_plugins().get("webhook")
    connector = loaded.cls({"url": f"{url}/h"}, InstanceContext("hook", "us", tmp_path))
    assert isinstance(connector, Destination)
    return ReplayRun(
        log,
        job,
        connector,
        settings=DeliverySettings(
            limits=BatchLimits(max_count=100, linger=0.0),
            concurrency=4,
            policy=FAST,
            max_in_flight=WINDOW,
        ),
    )


async def test_a_job_loads_its_parked_retries_a_window_at_a_time_and_sends_each_once(
    backend: tuple[str, AnyLog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, log = backend
    parked_count = PARKED[name]
    total = parked_count + READ
    job = prepare(log, parked_count)
    sink = SinkProcess(tmp_path / "sink.json")
    run = replay_run_to(log, job, sink.url, tmp_path)
    samples: list[int] = []
    original = replay_run.park_record

    def park(lanes: Any, pending: PendingRecord, size: int) -> None:
        original(lanes, pending, size)
        samples.append(sum(len(lane.parked) for lane in lanes))

    monkeypatch.setattr(replay_run, "park_record", park)
    finished = asyncio.Event()
    run.on_done = lambda _run: finished.set()
    try:
        await run.start()
        assert run.parked <= WINDOW and run.pending == parked_count, "loaded a window at start"
        await asyncio.wait_for(finished.wait(), 240)
    finally:
        await run.stop()
        arrivals = sink.arrivals()

    counts = Counter(arrivals)
    assert set(counts) == {f"m{seq}" for seq in range(1, total + 1)}
    assert set(counts.values()) == {1}, [m for m, n in counts.items() if n > 1][:10]
    # each user's retries in seq order, and the user's events read later behind them
    assert all(seqs == sorted(seqs) for seqs in per_user(arrivals).values())
    # every retry went through the lanes, never more than a window of them at once
    assert len(samples) == parked_count and max(samples) <= WINDOW, max(samples)
    stored = load_job(log, "1")
    assert stored.state == "done" and stored.pending == 0
    assert stored.delivered == total
    assert log.count(RETRIES, event_prefix(retry_namespace("1"))) == 0


async def test_a_job_stopped_while_loading_resumes_and_sends_each_once(tmp_path: Path) -> None:
    parked_count = 6_000
    total = parked_count + READ
    threshold = parked_count // 4
    gate = threading.Event()
    held: list[int] = []

    def hold_past_threshold(request: Any, events: Any) -> None:
        if sink.events_delivered >= threshold:  # the lanes wait here, each with a batch
            held.append(len(events))
            gate.wait(30)

    with LmdbLog(tmp_path / "data", sync=False) as log, WebhookSink(keep=False) as sink:
        prepare(log, parked_count)
        sink.behaviour = hold_past_threshold  # the stop lands midway
        run = replay_run_to(log, load_job(log, "1"), sink.url, tmp_path)
        await run.start()
        while sink.events_delivered < threshold:
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(run.stop())
        while not all(lane.closing for lane in run.lanes):  # the stop has begun
            await asyncio.sleep(0.01)
        gate.set()  # the batches in flight go through; no lane may start another
        await stopping
        # only the batches in flight when the stop began went out after it (one per
        # lane), so every retry delivered lies behind the cursor (parked_count // 2 + 1)
        assert len(held) <= 4, held
        assert run.pending > run.parked, "stopped while some retries were only in the table"
        stopped = load_job(log, "1")
        assert stopped.pending == log.count(RETRIES, event_prefix(retry_namespace("1")))
        sink.behaviour = None
        finished = asyncio.Event()
        resumed = replay_run_to(log, stopped, sink.url, tmp_path)
        resumed.on_done = lambda _run: finished.set()
        try:
            await resumed.start()
            await asyncio.wait_for(finished.wait(), 120)
        finally:
            await resumed.stop()
        counts = Counter(sink.delivered_ids())
        assert log.count(RETRIES, event_prefix(retry_namespace("1"))) == 0
        done = load_job(log, "1")
    assert done.state == "done" and done.delivered == total
    assert set(counts) == {f"m{seq}" for seq in range(1, total + 1)}
    assert set(counts.values()) == {1}, [m for m, n in counts.items() if n > 1][:10]
