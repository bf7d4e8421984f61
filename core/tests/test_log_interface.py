"""The log interface, pinned once and run against every backend (LMDB and JetStream).

Only behaviour both backends promise lives here; what is particular to one backend (LMDB's
map growth, JetStream's deduplication) is tested beside that backend.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.log import (
    AnyLog,
    JetStreamLog,
    LmdbLog,
    LogClosedError,
    LogError,
    RejectedItem,
    now_us,
    seq_key,
)
from headwater.log._nats_connect import NatsOptions

pytestmark = pytest.mark.timeout(60)

Opener = Callable[[], AnyLog]


@pytest.fixture(params=["lmdb", "jetstream"])
def open_any(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (and re-opens) one log of the backend under test; removes it afterwards.

    JetStream runs against the NATS service of the test machine (see the root conftest),
    in a stream of its own that is deleted at the end."""
    opened: list[AnyLog] = []
    options: NatsOptions | None = None
    stream = f"hwtest-{uuid.uuid4().hex[:12]}"
    if request.param == "jetstream":
        options = NatsOptions(servers=(request.getfixturevalue("nats_url"),))

    def opener() -> AnyLog:
        log: AnyLog = LmdbLog(tmp_path) if options is None else JetStreamLog(options, stream)
        opened.append(log)
        return log

    yield opener
    for log in opened:
        log.close()
    if options is not None:
        with JetStreamLog(options, stream) as cleanup:
            cleanup.drop()


@pytest.fixture
def log(open_any: Opener) -> AnyLog:
    return open_any()


def track(n: int, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": f"E{n}",
        "messageId": f"{uuid.uuid4()}",
        "userId": user,
        "properties": {"n": n, **extra},
    }


def test_empty_log_has_nothing_to_scan(log: AnyLog) -> None:
    assert log.last_seq() == 0
    assert list(log.scan()) == []
    assert log.seq_at_time(now_us()) == 1
    stats = log.stats()
    assert (stats.events, stats.first_seq, stats.last_seq, stats.rejected) == (0, None, None, 0)


def test_append_returns_its_range_and_scan_reads_it_back_in_order(log: AnyLog) -> None:
    events = [track(i, user=f"u{i % 3}") for i in range(10)]
    result = log.append_sync("web", events)
    assert (result.first_seq, result.last_seq, result.count) == (1, 10, 10)
    records = list(log.scan())
    assert [r.seq for r in records] == list(range(1, 11))
    assert [r.event for r in records] == events
    assert {r.source for r in records} == {"web"}
    assert {r.received_at for r in records} == {result.received_at}
    assert log.last_seq() == 10


async def test_async_and_blocking_appends_share_one_sequence(log: AnyLog) -> None:
    first = await log.append("web", [track(0), track(1)])
    second = await asyncio.to_thread(log.append_sync, "api", [track(2)])
    third = await log.append("web", [track(3)])
    assert (first.first_seq, first.last_seq) == (1, 2)
    assert (second.first_seq, second.last_seq) == (3, 3)
    assert (third.first_seq, third.last_seq) == (4, 4)
    assert [r.source for r in log.scan()] == ["web", "web", "api", "web"]


async def test_concurrent_appends_each_land_contiguously_and_nothing_is_lost(
    log: AnyLog,
) -> None:
    batches = [[track(i * 10 + j, user=f"u{j}") for j in range(10)] for i in range(20)]
    results = await asyncio.gather(*(log.append("web", batch) for batch in batches))
    for batch, result in zip(batches, results, strict=True):
        assert result.count == len(batch)
        stored = [r.event for r in log.scan(result.first_seq, result.last_seq)]
        assert stored == batch
    assert log.last_seq() == 200
    assert sorted(r.seq for r in log.scan()) == list(range(1, 201))


def test_scan_honours_start_and_end(log: AnyLog) -> None:
    log.append_sync("web", [track(i) for i in range(30)])
    assert [r.seq for r in log.scan(5, 9)] == [5, 6, 7, 8, 9]
    assert [r.seq for r in log.scan(28)] == [28, 29, 30]
    assert list(log.scan(31)) == []
    assert list(log.scan(9, 5)) == []


def test_a_scan_stopped_early_leaves_the_log_usable(log: AnyLog) -> None:
    log.append_sync("web", [track(i) for i in range(50)])
    for record in log.scan():
        if record.seq == 3:
            break
    assert next(iter(log.scan(49))).seq == 49


def test_get_returns_one_record_or_none(log: AnyLog) -> None:
    events = [track(0), track(1)]
    log.append_sync("web", events)
    record = log.get(2)
    assert record is not None and record.seq == 2 and record.event == events[1]
    assert log.get(3) is None


def test_nested_and_unicode_events_round_trip(log: AnyLog) -> None:
    event = {
        "type": "identify",
        "messageId": "m-ü",
        "anonymousId": "anon-1",
        "traits": {"name": "Zoë 🚀", "tags": ["a", "b"], "score": 1.5, "none": None},
        "context": {"nested": {"deep": [1, {"x": True}]}},
        "extraTopLevel": 7,
    }
    log.append_sync("web", [event])
    assert next(iter(log.scan())).event == event


def test_seq_at_time_finds_the_first_record_received_at_or_after(log: AnyLog) -> None:
    early = log.append_sync("web", [track(0), track(1)])
    time.sleep(0.005)
    late = log.append_sync("web", [track(2)])
    assert late.received_at > early.received_at
    assert log.seq_at_time(0) == 1
    assert log.seq_at_time(early.received_at) == 1
    assert log.seq_at_time(early.received_at + 1) == late.first_seq
    assert log.seq_at_time(late.received_at) == late.first_seq
    assert log.seq_at_time(late.received_at + 1) == late.last_seq + 1


def test_cursors_are_durable_and_survive_reopen(open_any: Opener) -> None:
    log = open_any()
    assert log.get_cursor("dest:webhook") is None
    log.set_cursor("dest:webhook", 41)
    log.set_cursor("dest:webhook", 42)
    log.set_cursor("replay:7", 3)
    log.close()
    again = open_any()
    assert again.get_cursor("dest:webhook") == 42
    assert again.cursors() == {"dest:webhook": 42, "replay:7": 3}


def test_events_survive_reopen(open_any: Opener) -> None:
    log = open_any()
    events = [track(i) for i in range(5)]
    log.append_sync("web", events)
    log.close()
    again = open_any()
    assert [r.event for r in again.scan()] == events
    assert again.append_sync("web", [track(5)]).first_seq == 6


def test_side_tables_put_get_delete_and_list_by_prefix(log: AnyLog) -> None:
    log.write_batch(
        [
            (b"dead_letters", b"webhook\x00" + seq_key(2), b"two"),
            (b"dead_letters", b"webhook\x00" + seq_key(1), b"one"),
            (b"dead_letters", b"mixpanel\x00" + seq_key(1), b"other"),
            (b"checkpoints", b"postgres.orders", b"cursor=10"),
        ]
    )
    assert log.get_value(b"checkpoints", b"postgres.orders") == b"cursor=10"
    assert log.get_value(b"checkpoints", b"missing") is None
    assert log.items(b"dead_letters", b"webhook\x00") == [
        (b"webhook\x00" + seq_key(1), b"one"),
        (b"webhook\x00" + seq_key(2), b"two"),
    ]
    assert len(log.items(b"dead_letters")) == 3
    log.put_value(b"checkpoints", b"postgres.orders", b"cursor=11")
    log.delete_value(b"dead_letters", b"webhook\x00" + seq_key(1))
    assert log.get_value(b"checkpoints", b"postgres.orders") == b"cursor=11"
    assert log.get_value(b"dead_letters", b"webhook\x00" + seq_key(1)) is None
    assert [k for k, _ in log.items(b"dead_letters", b"webhook")] == [b"webhook\x00" + seq_key(2)]
    assert log.items(b"replays") == []
    with pytest.raises(LogError, match="no side table"):
        log.put_value(b"nope", b"k", b"v")


def test_side_tables_count_page_and_walk_without_loading_the_table(log: AnyLog) -> None:
    table = b"dead_letters"
    mine = [b"webhook\x00" + seq_key(n) for n in range(1, 1201)]
    log.write_batch([(table, b"mixpanel\x00" + seq_key(n), b"x") for n in (1, 5000)])
    log.write_batch([(table, key, key[-2:]) for key in reversed(mine)])
    log.delete_value(table, mine[7])
    live = mine[:7] + mine[8:]
    assert log.count(table, b"webhook\x00") == len(live)
    assert log.count(table) == len(live) + 2
    assert log.count(b"retries", b"webhook\x00") == 0
    pages, after = [], None
    while rows := log.page(table, b"webhook\x00", after=after, limit=250):
        assert len(rows) <= 250
        pages.append(rows)
        after = rows[-1][0]
    assert [k for rows in pages for k, _ in rows] == live
    assert pages[0][0] == (mine[0], mine[0][-2:])
    assert log.page(table, b"webhook\x00", after=live[-1], limit=10) == []
    assert log.page(table, b"mixpanel\x00", after=b"", limit=1)[0][0].endswith(seq_key(1))
    walked = [rows for rows in log.walk(table, b"webhook\x00", chunk=300)]
    assert all(0 < len(rows) <= 300 for rows in walked)
    assert sorted(k for rows in walked for k, _ in rows) == live
    # Deleting what a chunk gave before asking for the next one is part of the contract.
    seen = 0
    for rows in log.walk(table, b"webhook\x00", chunk=300):
        seen += len(rows)
        log.write_batch([(table, key, None) for key, _ in rows])
    assert seen == len(live)
    assert log.count(table, b"webhook\x00") == 0
    assert log.count(table) == 2


async def test_side_ops_of_an_append_are_stored_with_its_events(log: AnyLog) -> None:
    result = await log.append(
        "postgres",
        [track(0), track(1)],
        side_ops=[(b"checkpoints", b"postgres", b"row=2"), (b"retries", b"gone", None)],
    )
    assert result.count == 2
    assert log.get_value(b"checkpoints", b"postgres") == b"row=2"


def test_rejected_items_are_kept_with_their_reason_and_counted(log: AnyLog) -> None:
    bad = RejectedItem("web", now_us(), "missing `type`", {"event": "x"})
    result = log.append_sync("web", [track(0)], rejected=[bad])
    assert (result.count, result.rejected) == (1, 1)
    stored = list(log.rejected())
    assert len(stored) == 1 and stored[0][1] == bad
    assert log.stats().rejected == 1


def test_an_append_of_only_rejected_items_stores_no_event(log: AnyLog) -> None:
    log.append_sync("web", [track(0)])
    bad = RejectedItem("web", now_us(), "too large", "...")
    result = log.append_sync("web", [], rejected=[bad])
    assert (result.count, result.rejected, result.first_seq) == (0, 1, 2)
    assert log.last_seq() == 1
    only_state = log.append_sync("web", [], side_ops=[(b"checkpoints", b"web", b"7")])
    assert (only_state.count, only_state.first_seq) == (0, 2)
    assert log.get_value(b"checkpoints", b"web") == b"7"


def test_stats_count_events_and_name_the_range(log: AnyLog) -> None:
    first = log.append_sync("web", [track(i) for i in range(3)])
    log.append_sync("web", [track(3)])
    stats = log.stats()
    assert (stats.events, stats.first_seq, stats.last_seq) == (4, 1, 4)
    assert stats.first_time is not None and stats.first_time.endswith("Z")
    assert stats.last_time is not None and stats.last_time >= stats.first_time
    assert stats.bytes > 0
    assert first.received_at > 0


async def test_a_closed_log_refuses_appends(open_any: Opener) -> None:
    log = open_any()
    log.close()
    with pytest.raises(LogClosedError):
        await log.append("web", [track(0)])
    with pytest.raises(LogClosedError):
        log.append_sync("web", [track(0)])
