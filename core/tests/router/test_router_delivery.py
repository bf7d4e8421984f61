"""The delivery loop against a real LMDB log: order, retries, dead letters, durability."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from headwater.log import LmdbLog
from headwater.router import (
    RETRIES,
    EventFilter,
    RetryPolicy,
    cursor_name,
    list_dead_letters,
    request_redrive,
)
from headwater_spec import DELIVERED, Event, Outcome, Rejected, Retry

from .conftest import Recorder, make_loop, settle, track, wait_until

pytestmark = pytest.mark.timeout(60)


def per_user(events: Sequence[Event]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for ev in events:
        out.setdefault(ev.user_key, []).append(int(str(ev.messageId)[1:]))
    return out


async def test_every_event_is_delivered_once_with_each_users_order_kept(log: LmdbLog) -> None:
    log.append_sync("web", [track(i, user=f"u{i % 7}") for i in range(500)])
    dest = Recorder()
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await settle(loop)
    finally:
        await loop.stop()
    assert sorted(dest.delivered_ids()) == sorted(f"m{i}" for i in range(500))
    for seqs in per_user(dest.delivered).values():
        assert seqs == sorted(seqs)
    assert max(len(b) for b in dest.batches) <= 10
    assert log.get_cursor(cursor_name("rec")) == 501
    assert loop.state is not None and loop.state.record.delivered == 500


async def test_live_events_are_delivered_after_start(log: LmdbLog) -> None:
    dest = Recorder()
    loop = make_loop(log, dest, start="now")
    log.append_sync("web", [track(0)])  # before start: "now" skips it
    await loop.start()
    try:
        for i in range(1, 21):
            await log.append("web", [track(i, user=f"u{i % 3}")])
            loop.notify()
        await wait_until(lambda: len(dest.delivered) == 20)
    finally:
        await loop.stop()
    assert "m0" not in dest.delivered_ids()


async def test_filters_on_type_source_and_integrations(log: LmdbLog) -> None:
    events = [
        track(1),
        {"type": "identify", "userId": "u1", "messageId": "m2"},
        track(3, integrations={"All": False, "Recorder": True}),
        track(4, integrations={"All": False, "Mixpanel": True}),
        track(5, integrations={"recorder": False}),
        track(6, integrations={"Recorder": {"someOption": 1}}),
    ]
    log.append_sync("web", events)
    log.append_sync("server", [track(7)])
    dest = Recorder()
    flt = EventFilter(event_types={"track"}, sources={"web"}, names=("rec", "recorder", "Recorder"))
    loop = make_loop(log, dest, event_filter=flt)
    await loop.start()
    try:
        await settle(loop)
    finally:
        await loop.stop()
    assert dest.delivered_ids() == ["m1", "m3", "m6"]
    assert loop.state is not None and loop.state.record.filtered == 4


async def test_a_failing_user_holds_back_only_that_user(log: LmdbLog) -> None:
    """The service throttles user "bad" for its first three sends (as Amplitude's per-user
    throttling does): that user's events wait, in order, while other users flow."""
    failures = 3

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        nonlocal failures
        throttled = failures > 0 and any(ev.user_key == "bad" for ev in batch)
        if throttled:
            failures -= 1
        return [
            Retry(reason="HTTP 429 user throttled")
            if throttled and ev.user_key == "bad"
            else DELIVERED
            for ev in batch
        ]

    events = [track(i, user="bad" if i % 5 == 0 else f"u{i % 3}") for i in range(100)]
    log.append_sync("web", events)
    dest = Recorder(behaviour)
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await settle(loop)
        await wait_until(lambda: len(dest.delivered) == 100)
        await wait_until(lambda: not log.items(RETRIES))
    finally:
        await loop.stop()
    order = per_user(dest.delivered)
    assert order["bad"] == list(range(0, 100, 5))
    for user, seqs in order.items():
        assert seqs == sorted(seqs), user
    first_bad = dest.delivered_ids().index("m0")
    assert first_bad > 0, "other users were delivered while u-bad was retrying"
    assert loop.state is not None and loop.state.record.retried >= 3


async def test_rejected_events_are_dead_lettered_with_reason_and_cursor_moves(
    log: LmdbLog,
) -> None:
    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        return [
            Rejected(reason="HTTP 400: bad email") if ev.messageId == "m3" else DELIVERED
            for ev in batch
        ]

    log.append_sync("web", [track(i, user=f"u{i}") for i in range(6)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await settle(loop)
    finally:
        await loop.stop()
    letters = list_dead_letters(log, "rec")
    assert [(d.seq, d.reason, d.attempts) for d in letters] == [(4, "HTTP 400: bad email", 1)]
    assert letters[0].event["messageId"] == "m3"
    assert letters[0].destination == "rec"
    assert letters[0].first_attempt_at <= letters[0].last_attempt_at
    assert log.get_cursor(cursor_name("rec")) == 7


async def test_a_batch_refused_as_a_whole_is_split_to_find_the_bad_events(
    log: LmdbLog,
) -> None:
    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        if any(ev.messageId in ("m2", "m7") for ev in batch):
            return [Rejected(reason="HTTP 400: invalid batch")] * len(batch)
        return [DELIVERED] * len(batch)

    log.append_sync("web", [track(i, user=f"u{i}") for i in range(10)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest, concurrency=1)
    await loop.start()
    try:
        await settle(loop)
    finally:
        await loop.stop()
    assert sorted(d.event["messageId"] for d in list_dead_letters(log, "rec")) == ["m2", "m7"]
    assert sorted(dest.delivered_ids()) == sorted(f"m{i}" for i in range(10) if i not in (2, 7))


async def test_events_out_of_retries_are_dead_lettered(log: LmdbLog) -> None:
    dest = Recorder(lambda batch: [Retry(reason="HTTP 500")] * len(batch))
    log.append_sync("web", [track(1), track(2)])
    loop = make_loop(log, dest, policy=RetryPolicy(base=0.001, cap=0.002, max_attempts=3))
    await loop.start()
    try:
        await wait_until(lambda: len(list_dead_letters(log, "rec")) == 2)
    finally:
        await loop.stop()
    letters = list_dead_letters(log, "rec")
    assert {d.attempts for d in letters} == {3}
    assert all(d.reason == "gave up after 3 attempt(s): HTTP 500" for d in letters)
    assert not log.items(RETRIES)
    assert sum(len(b) for b in dest.batches) == 6


async def test_retry_schedule_and_order_survive_a_restart(log: LmdbLog) -> None:
    healthy = False

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        return [DELIVERED if healthy else Retry(reason="HTTP 503")] * len(batch)

    log.append_sync("web", [track(i, user="u1") for i in range(30)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest, concurrency=1, policy=RetryPolicy(base=0.05, cap=0.1))
    await loop.start()
    await wait_until(lambda: len(log.items(RETRIES)) == 30)
    await loop.stop()
    assert log.get_cursor(cursor_name("rec")) == 31  # the retry table owns them now

    healthy = True
    dest2 = Recorder(behaviour)
    loop2 = make_loop(log, dest2, concurrency=2)
    await loop2.start()
    try:
        await wait_until(lambda: len(dest2.delivered) == 30)
        await wait_until(lambda: not log.items(RETRIES))
    finally:
        await loop2.stop()
    assert dest2.delivered_ids() == [f"m{i}" for i in range(30)]


async def test_a_restart_resends_at_most_the_in_flight_window(log: LmdbLog) -> None:
    gate = asyncio.Event()

    async def hang(batch: Sequence[Event]) -> list[Outcome]:
        await gate.wait()
        return [DELIVERED] * len(batch)

    log.append_sync("web", [track(i, user=f"u{i % 5}") for i in range(1000)])
    loop = make_loop(log, Recorder(hang), max_in_flight=100)
    await loop.start()
    await wait_until(lambda: loop.read_pos - 1 >= 100)  # the window is full
    await asyncio.sleep(0.3)  # and the reader goes no further
    assert loop.read_pos - 1 == 100, "the reader stopped at the in-flight window"
    await loop.stop()
    assert log.get_cursor(cursor_name("rec")) == 1

    dest = Recorder()
    loop2 = make_loop(log, dest)
    await loop2.start()
    try:
        await settle(loop2)
    finally:
        await loop2.stop()
    assert sorted(dest.delivered_ids()) == sorted(f"m{i}" for i in range(1000))


async def test_retry_after_holds_every_lane(log: LmdbLog) -> None:
    answered: list[float] = []

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        if not answered:
            answered.append(asyncio.get_running_loop().time())
            return [Retry(reason="HTTP 429", retry_after=0.5)] * len(batch)
        return [DELIVERED] * len(batch)

    log.append_sync("web", [track(i, user=f"u{i}") for i in range(40)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest, concurrency=1)
    await loop.start()
    try:
        await settle(loop)
        await wait_until(lambda: len(dest.delivered) == 40)
    finally:
        await loop.stop()
    assert len(dest.times) >= 2
    assert min(t - dest.times[0] for t in dest.times[1:]) >= 0.49


async def test_redrive_request_requeues_dead_letters_with_fresh_attempts(log: LmdbLog) -> None:
    fixed = False

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        return [
            DELIVERED if fixed or ev.messageId != "m1" else Rejected(reason="HTTP 422")
            for ev in batch
        ]

    log.append_sync("web", [track(i, user=f"u{i}") for i in range(3)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await wait_until(lambda: len(list_dead_letters(log, "rec")) == 1)
        fixed = True
        request_redrive(log, "rec")  # as the CLI does, from outside the loop
        await wait_until(lambda: "m1" in dest.delivered_ids())
        await wait_until(lambda: not list_dead_letters(log, "rec") and not log.items(RETRIES))
    finally:
        await loop.stop()
    assert loop.state is not None and loop.state.record.redriven == 1
    assert dest.delivered_ids().count("m1") == 1


async def test_a_black_holed_destination_does_not_hold_back_another(log: LmdbLog) -> None:
    async def never(batch: Sequence[Event]) -> list[Outcome]:
        await asyncio.Event().wait()
        raise AssertionError

    log.append_sync("web", [track(i, user=f"u{i % 10}") for i in range(2000)])
    stuck = make_loop(log, Recorder(never), name="stuck", max_in_flight=50)
    good_dest = Recorder()
    good = make_loop(log, good_dest, name="good")
    await stuck.start()
    await good.start()
    try:
        await settle(good)
    finally:
        await good.stop()
        await stuck.stop()
    assert len(good_dest.delivered) == 2000
    assert log.get_cursor(cursor_name("stuck")) == 1


async def test_a_connector_that_raises_loses_nothing(log: LmdbLog) -> None:
    calls = 0

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return [DELIVERED] * len(batch)

    log.append_sync("web", [track(i) for i in range(5)])
    dest = Recorder(behaviour)
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await wait_until(lambda: len(dest.delivered) == 5)
    finally:
        await loop.stop()
    assert loop.state is not None and loop.state.record.last_error.startswith(
        "connector raised RuntimeError"
    )


async def test_a_restart_probes_the_parked_events_instead_of_sleeping_out_the_backoff(
    log: LmdbLog,
) -> None:
    down = Recorder(lambda batch: [Retry(reason="HTTP 503")] * len(batch))
    log.append_sync("web", [track(i, user=f"u{i % 3}") for i in range(12)])
    slow = RetryPolicy(base=600, cap=600)
    loop = make_loop(log, down, policy=slow)
    await loop.start()
    await wait_until(lambda: len(log.items(RETRIES)) == 12)
    await loop.stop()
    assert loop.health.failures >= 1

    up = Recorder()
    loop2 = make_loop(log, up, policy=slow)
    await loop2.start()
    try:
        await wait_until(lambda: len(up.delivered) == 12, timeout=5)
        await wait_until(lambda: not log.items(RETRIES))
    finally:
        await loop2.stop()
    for seqs in per_user(up.delivered).values():
        assert seqs == sorted(seqs)
