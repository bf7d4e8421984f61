"""A replay job at work on a real LMDB log, through the router's lanes, to an in-process
destination: the range exactly, per-user order, filters, retries in the job's own
namespace, dead letters in the destination's table, pacing, resuming after a stop."""

from __future__ import annotations

import asyncio
import time

import pytest

from headwater.log import LmdbLog, LogError
from headwater.replay import ReplayFilter, change_state, list_jobs, load_job, save_job
from headwater.replay._pressure import LoopPressure
from headwater.replay._records import cursor_name, retry_namespace
from headwater.replay._run import FLOOR_RATE, Pacer
from headwater.router import RETRIES, EventFilter, list_dead_letters
from headwater.router._records import event_prefix
from headwater_spec import DELIVERED, Event, Outcome, Rejected, Retry

from .conftest import Recorder, event, job, make_run, run_to_end, wait_until


def per_user(ids: list[str], users: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for mid in ids:
        out.setdefault(users[mid], []).append(mid)
    return out


async def test_a_job_sends_exactly_its_range_in_per_user_order_and_ends(log: LmdbLog) -> None:
    events = [event(n) for n in range(300)]
    log.append_sync("web", events)
    replay = job(51, 250)
    save_job(log, replay)
    dest = Recorder()
    await run_to_end(make_run(log, replay, dest))
    wanted = [e["messageId"] for e in events[50:250]]
    assert sorted(dest.ids()) == sorted(wanted) and len(dest.ids()) == len(wanted)
    users = {e["messageId"]: e["userId"] for e in events}
    assert per_user(dest.ids(), users) == per_user(wanted, users)
    (stored,) = list_jobs(log)
    assert stored.state == "done" and stored.delivered == 200 and stored.finished_at
    assert log.get_cursor(cursor_name("1")) == 251
    assert log.get_cursor("destination:rec") is None, "the destination's own cursor is untouched"
    assert dest.closed


async def test_an_empty_range_is_done_at_once(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(5)])
    replay = job(6, 5)
    dest = Recorder()
    await run_to_end(make_run(log, replay, dest))
    assert dest.calls == 0 and load_job(log, "1").state == "done"


async def test_the_job_filter_and_the_destination_filter_both_apply(log: LmdbLog) -> None:
    log.append_sync("web", [event(n, event="Order Completed") for n in range(10)])
    log.append_sync("app", [event(n, event="Order Completed") for n in range(10, 20)])
    log.append_sync("app", [event(n, event="Signed Up") for n in range(20, 30)])
    log.append_sync(
        "app",
        [
            {"type": "page", "name": "Order Completed", "userId": "p", "messageId": f"m{n}"}
            for n in range(30, 35)
        ],
    )
    log.append_sync(
        "app", [{"type": "identify", "userId": "i", "messageId": f"m{n}"} for n in range(35, 40)]
    )
    spec = ReplayFilter(sources=["app"], events=["Order Completed"])
    replay = job(1, 40, filter=spec)
    dest = Recorder()
    only_tracks = EventFilter(event_types=["track"])
    await run_to_end(make_run(log, replay, dest, event_filter=only_tracks))
    assert sorted(dest.ids()) == sorted(f"m{n}" for n in range(10, 20))
    assert load_job(log, "1").filtered == 30


async def test_retries_wait_in_the_jobs_namespace_and_succeed(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(40)])
    failed: set[str] = set()

    def once(ev: Event) -> Outcome:
        if ev.userId == "u1" and ev.messageId not in failed:
            failed.add(str(ev.messageId))
            return Retry(reason="busy", retry_after=0.3)
        return DELIVERED

    replay = job(1, 40)
    dest = Recorder(once)
    run = make_run(log, replay, dest)
    await run.start()
    await wait_until(lambda: bool(log.items(RETRIES, event_prefix(retry_namespace("1")))))
    assert not log.items(RETRIES, event_prefix("rec")), "the live queue never adopts them"
    await wait_until(lambda: load_job(log, "1").state == "done")
    assert sorted(dest.ids()) == sorted(f"m{n}" for n in range(40))
    u1 = [m for m in dest.ids() if int(m[1:]) % 5 == 1]
    assert u1 == sorted(u1, key=lambda m: int(m[1:])), "u1 kept its order through retries"
    assert load_job(log, "1").retried >= 8
    assert not log.items(RETRIES, event_prefix(retry_namespace("1")))


async def test_refused_events_become_the_destinations_dead_letters(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(20)])

    def refuse(ev: Event) -> Outcome:
        return Rejected(reason="no such user") if ev.messageId == "m7" else DELIVERED

    dest = Recorder(refuse)
    await run_to_end(make_run(log, job(1, 20), dest))
    letters = list_dead_letters(log, "rec")
    assert [(d.seq, d.reason) for d in letters] == [(8, "no such user")]
    assert load_job(log, "1").dead_lettered == 1
    assert len(dest.ids()) == 19


async def test_the_rate_caps_the_events_per_second(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(200)])
    started = time.monotonic()
    await run_to_end(make_run(log, job(1, 200, rate=400.0), Recorder()))
    assert time.monotonic() - started >= 0.35, "200 events at 400/s take about half a second"


async def test_a_stopped_job_resumes_at_its_cursor_and_skips_nothing(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(500)])
    replay = job(1, 500, rate=2000.0)
    save_job(log, replay)
    first = Recorder()
    run = make_run(log, replay, first)
    await run.start()
    await wait_until(lambda: len(first.ids()) >= 100)
    replay.state = "paused"
    await run.stop()
    stored = load_job(log, "1")
    assert stored.state == "paused"
    cursor = log.get_cursor(cursor_name("1"))
    assert cursor is not None and 100 <= cursor <= 500
    second = Recorder()
    await run_to_end(make_run(log, stored, second))
    both = first.ids() + second.ids()
    assert set(both) == {f"m{n}" for n in range(500)}
    assert len(both) == 500, "a graceful stop lets the batches in flight finish: no repeats"


async def test_cancelling_a_job_offline_drops_its_parked_retries(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(10)])
    replay = job(1, 10)
    save_job(log, replay)
    run = make_run(log, replay, Recorder(lambda ev: Retry(reason="down", retry_after=60)))
    await run.start()
    await wait_until(lambda: bool(log.items(RETRIES, event_prefix(retry_namespace("1")))))
    await run.stop()
    cancelled = change_state(log, "1", "cancel")
    assert cancelled.state == "cancelled"
    assert not log.items(RETRIES, event_prefix(retry_namespace("1")))


async def test_the_pace_drops_while_the_loop_is_late_and_recovers() -> None:
    pressure = LoopPressure()
    pacer = Pacer(None, pressure)
    start = pacer.current
    pressure.lag = 0.05
    now = time.monotonic()
    for step in range(60):
        pacer._adjust(now + step)
    assert pacer.current == FLOOR_RATE
    pressure.lag = 0.0
    for step in range(60, 120):
        pacer._adjust(now + step)
    assert pacer.current > start
    capped = Pacer(300.0, pressure)
    for step in range(60):
        capped._adjust(now + step)
    assert capped.current == 300.0, "never above the job's own rate"


async def test_the_loop_pressure_sees_a_blocked_loop() -> None:
    pressure = LoopPressure(period=0.002)
    pressure.acquire()
    try:
        await asyncio.sleep(0.02)
        for _ in range(10):
            # 20 ms of this thread's CPU (not wall time: on a busy machine the thread may
            # not run for much of a wall-clock spin) on the loop: its timers run late.
            spin_until = time.thread_time() + 0.02
            while time.thread_time() < spin_until:
                pass
            await asyncio.sleep(0.003)
        assert pressure.lag > 0.003
        lag = pressure.lag
        for _ in range(12):  # each step decays the estimate by >= 15%: 0.85**12 < 0.15
            time.sleep(0.02)  # the thread is not running (as when other processes have the
            await asyncio.sleep(0.003)  # cores): late timers, but no reason to give way
        assert pressure.lag < lag / 2
    finally:
        await pressure.release()


async def test_events_with_keys_the_model_does_not_know_are_filtered_the_same(
    log: LmdbLog,
) -> None:
    """Such events take the general decode (their extra keys must survive); the job's
    filter gives the same answer on both paths."""
    log.append_sync("web", [event(n, event="Order Completed", custom={"k": n}) for n in range(10)])
    log.append_sync("web", [event(n, event="Signed Up", custom=1) for n in range(10, 20)])
    log.append_sync("web", [event(n, event="Order Completed") for n in range(20, 30)])
    dest = Recorder()
    await run_to_end(
        make_run(log, job(1, 30, filter=ReplayFilter(events=["Order Completed"])), dest)
    )
    assert sorted(dest.ids()) == sorted(f"m{n}" for n in [*range(10), *range(20, 30)])
    kept = [e for e in dest.delivered if e.messageId == "m3"]
    assert kept[0].extra == {"custom": {"k": 3}}, "unknown keys reach the destination"


async def test_a_run_that_cannot_open_closes_its_connector(
    log: LmdbLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service builds a connector per launch and tries again after a failed one (a
    NATS failover): a failed start must not leave that connector's sessions open."""
    log.append_sync("web", [event(i) for i in range(1, 4)])
    rec = Recorder()
    run = make_run(log, job(1, 3), rec)

    def unreadable(*_args: object) -> int:
        raise LogError("the state bucket cannot be read")

    monkeypatch.setattr(log, "count", unreadable)
    with pytest.raises(LogError, match="cannot be read"):
        await run.start()
    assert rec.closed
