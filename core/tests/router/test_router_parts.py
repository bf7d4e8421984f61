"""The router's small parts: filter, retry policy, watermark, parked queues, batcher, lanes,
rate limiter, settings from config."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from headwater.config import instance_from_dict
from headwater.router import (
    Batcher,
    BatchLimits,
    EventFilter,
    RateLimiter,
    RetryPolicy,
    SettingsError,
    Watermark,
    delivery_settings,
    event_filter,
    lane_index,
)
from headwater.router._parked import Parked, ParkedQueues
from headwater_spec import ConnectorSpec

from .conftest import TEST_SPEC

# -- filter ---------------------------------------------------------------------------


def mixpanel_filter() -> EventFilter:
    return EventFilter(names=("product-analytics", "mixpanel", "Mixpanel"))


@pytest.mark.parametrize(
    ("integrations", "wanted"),
    [
        ({}, True),
        ({"All": False}, False),
        ({"All": False, "Mixpanel": True}, True),
        ({"All": False, "mixpanel": True}, True),
        ({"All": True, "Mixpanel": False}, False),
        ({"Mixpanel": False}, False),
        ({"All": False, "Mixpanel": {"apiSecret": "x"}}, True),
        ({"All": False, "Amplitude": True}, False),
        ({"All": False, "product-analytics": True, "Mixpanel": False}, True),
        ({"Amplitude": False}, True),
    ],
)
def test_integrations_follow_segment_semantics(
    integrations: dict[str, object], wanted: bool
) -> None:
    event = {"type": "track", "integrations": integrations}
    assert mixpanel_filter().wants("web", event) is wanted


def test_event_type_and_source_filters() -> None:
    flt = EventFilter(event_types={"track", "identify"}, sources={"web"})
    assert flt.wants("web", {"type": "track"})
    assert not flt.wants("web", {"type": "page"})
    assert not flt.wants("server", {"type": "track"})


def test_instance_events_meet_the_connectors_event_types() -> None:
    spec = ConnectorSpec.from_dict({**TEST_SPEC.to_dict(), "event_types": ["track", "identify"]})
    inst = instance_from_dict(
        "d", "destination", {"connector": "recorder", "events": ["track", "page"]}
    )
    flt = event_filter(inst, spec)
    assert flt.event_types == {"track"}
    bad = instance_from_dict("d", "destination", {"connector": "recorder", "events": ["tracks"]})
    with pytest.raises(SettingsError, match=r"destinations\.d\.events.*'tracks'"):
        event_filter(bad, spec)


# -- retry policy ---------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=30.0)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (40, 30.0)]:
        delays = [policy.delay(attempts, rng=rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2


def test_retry_after_replaces_the_backoff() -> None:
    assert RetryPolicy().delay(9, 2.5) == 2.5


def test_gives_up_on_attempts_or_age_from_first_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, max_age=60)
    assert not policy.exhausted(2, 0, 59_000_000)
    assert policy.exhausted(3, 0, 1)
    assert policy.exhausted(1, 0, 60_000_000)


# -- watermark --------------------------------------------------------------------------


def test_watermark_is_the_lowest_unfinished_seq() -> None:
    mark = Watermark(10)
    for seq in (12, 13, 11):
        mark.finish(seq)
        assert mark.low == 10
    assert mark.ahead == 3
    mark.finish(10)
    assert mark.low == 14 and mark.ahead == 0
    mark.finish(5)  # below: ignored
    assert mark.low == 14


# -- parked queues ----------------------------------------------------------------------


def test_parked_runs_go_head_first_and_block_their_user() -> None:
    queues = ParkedQueues()
    queues.park(Parked(seq=5, user="a", size=10, attempts=1, next_at=100))
    queues.park(Parked(seq=9, user="a", size=10))
    queues.park(Parked(seq=7, user="b", size=10, attempts=2, next_at=300))
    assert queues.blocked("a") and queues.blocked("b") and not queues.blocked("c")
    assert queues.next_due() == 100
    assert queues.take_due(50, 10, 1000) == []
    run = queues.take_due(200, 10, 1000)
    assert [p.seq for p in run] == [5, 9]
    assert queues.next_due() == 300  # "a" is in flight
    for entry in run:
        queues.remove(entry)
    queues.settle({"a"})
    assert not queues.blocked("a") and len(queues) == 1


def test_an_older_entry_goes_before_newer_ones() -> None:
    queues = ParkedQueues()
    queues.park(Parked(seq=20, user="a", size=1))
    queues.park(Parked(seq=3, user="a", size=1))
    assert [p.seq for p in queues.take_due(0, 10, 100)] == [3, 20]


def test_make_due_ends_the_wait() -> None:
    queues = ParkedQueues()
    queues.park(Parked(seq=1, user="a", size=1, attempts=4, next_at=10**12))
    queues.make_due(5)
    assert [p.seq for p in queues.take_due(5, 10, 100)] == [1]


# -- batcher ----------------------------------------------------------------------------


class Sized:
    def __init__(self, size: int, keep: bool = True) -> None:
        self.size = size
        self.keep = keep


def test_take_respects_count_and_bytes_but_always_one() -> None:
    batcher: Batcher[Sized] = Batcher(BatchLimits(max_count=3, max_bytes=100))
    for size in (40, 40, 40, 500, 10):
        batcher.put(Sized(size))
    assert [i.size for i in batcher.take(3, 100)] == [40, 40]
    assert [i.size for i in batcher.take(3, 100)] == [40]
    assert [i.size for i in batcher.take(3, 100)] == [500]
    assert [i.size for i in batcher.take(3, 100)] == [10]


def test_items_not_kept_do_not_count_against_the_limits() -> None:
    batcher: Batcher[Sized] = Batcher(BatchLimits(max_count=2))
    for keep in (True, False, False, True, True):
        batcher.put(Sized(1, keep))
    taken = batcher.take(2, 100, lambda item: item.keep)
    assert [i.keep for i in taken] == [True, False, False, True]
    assert len(batcher) == 1


async def test_linger_ends_as_soon_as_the_batch_is_full() -> None:
    batcher: Batcher[Sized] = Batcher(BatchLimits(max_count=2, linger=3600.0))
    batcher.put(Sized(1))
    asyncio.get_running_loop().call_later(0.05, batcher.put, Sized(1))
    await asyncio.wait_for(batcher.linger(), 30)  # not the hour's deadline


async def test_linger_waits_out_its_deadline_for_a_batch_that_is_not_full() -> None:
    batcher: Batcher[Sized] = Batcher(BatchLimits(max_count=2, linger=0.2))
    batcher.put(Sized(1))
    started = time.monotonic()
    await asyncio.wait_for(batcher.linger(), 30)
    assert time.monotonic() - started >= 0.15


# -- lanes and rate limiter -------------------------------------------------------------


def test_lane_index_is_stable_and_spreads_users() -> None:
    assert lane_index("user-1", 8) == lane_index("user-1", 8)
    assert lane_index("anything", 1) == 0
    used = {lane_index(f"user-{n}", 4) for n in range(100)}
    assert used == {0, 1, 2, 3}


async def test_rate_limiter_spaces_requests() -> None:
    limiter = RateLimiter(20.0)
    started = time.monotonic()
    for _ in range(30):
        await limiter.acquire()
    assert time.monotonic() - started >= 0.45  # 20 burst, then 10 at 20/s


async def test_a_hold_stops_every_acquire_until_it_ends() -> None:
    limiter = RateLimiter(None)
    limiter.hold_until(time.monotonic() + 0.2)
    limiter.hold_until(time.monotonic() + 0.1)  # never shortens
    started = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - started >= 0.19


# -- settings from config ---------------------------------------------------------------


def test_settings_take_framework_keys_over_spec_hints_within_the_max_batch() -> None:
    inst = instance_from_dict(
        "d",
        "destination",
        {
            "connector": "recorder",
            "batch_size": 500,
            "concurrency": 2,
            "linger_ms": 0,
            "max_attempts": 3,
            "max_age": "2h",
            "rate_limit": 5,
            "start": "beginning",
        },
    )
    s = delivery_settings(inst, TEST_SPEC)
    assert s.limits.max_count == 50  # the connector's max_batch
    assert s.limits.linger == 0 and s.concurrency == 2 and s.rate_limit == 5
    assert s.policy.max_attempts == 3 and s.policy.max_age == 7200
    assert s.start == "beginning"


def test_bad_max_age_names_the_key() -> None:
    inst = instance_from_dict("d", "destination", {"connector": "recorder", "max_age": "soon"})
    with pytest.raises(SettingsError, match=r"destinations\.d\.max_age"):
        delivery_settings(inst, TEST_SPEC)
