"""The LMDB event log: group commit, ordering, reopening, reads, cursors, stats, map growth
and a full map. Crash and full-disk tests that need other processes or a mount are in
test_log_lmdb_processes.py and test_log_lmdb_disk_full.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from headwater.log import (
    CURSORS,
    LmdbLog,
    LogClosedError,
    LogError,
    LogFullError,
    RejectedItem,
    iso_us,
    now_us,
)

pytestmark = pytest.mark.timeout(60)


def track(task: int, n: int) -> dict[str, Any]:
    return {"type": "track", "event": "Tick", "userId": f"u{task}", "properties": {"n": n}}


async def test_fifty_concurrent_appenders_all_land_in_order_without_gaps(tmp_path: Path) -> None:
    log = LmdbLog(tmp_path)
    rounds, per_append = 8, 5

    async def appender(task: int) -> list[tuple[int, int]]:
        ranges = []
        for r in range(rounds):
            batch = [track(task, r * per_append + i) for i in range(per_append)]
            result = await log.append(f"src-{task}", batch)
            assert result.count == per_append
            ranges.append((result.first_seq, result.last_seq))
        return ranges

    answers = await asyncio.gather(*(appender(t) for t in range(50)))
    await log.aclose()

    total = 50 * rounds * per_append
    assert log.committed_events == total
    assert log.commits < 50 * rounds, "appends were not grouped into shared commits"
    reopened = LmdbLog(tmp_path)
    records = list(reopened.scan())
    assert [r.seq for r in records] == list(range(1, total + 1))
    for task, ranges in enumerate(answers):
        seen = []
        for first, last in ranges:
            for seq in range(first, last + 1):
                record = records[seq - 1]
                assert record.source == f"src-{task}"
                assert record.event["userId"] == f"u{task}"
                seen.append(record.event["properties"]["n"])
        assert seen == list(range(rounds * per_append)), "one appender's events out of order"
    times = [r.received_at for r in records]
    assert times == sorted(times)
    reopened.close()


def test_reopen_after_close_keeps_everything_and_continues_the_sequence(tmp_path: Path) -> None:
    with LmdbLog(tmp_path) as log:
        first = log.append_sync("a", [track(1, n) for n in range(3)])
        log.set_cursor("dest:archive", 2)
    assert (first.first_seq, first.last_seq) == (1, 3)
    with LmdbLog(tmp_path) as log:
        assert log.last_seq() == 3
        assert log.get_cursor("dest:archive") == 2
        second = log.append_sync("a", [track(1, 3)])
        assert (second.first_seq, second.last_seq) == (4, 4)
        assert second.received_at >= first.received_at
        assert [r.event["properties"]["n"] for r in log.scan()] == [0, 1, 2, 3]


def test_scans_read_any_range_in_order(tmp_path: Path) -> None:
    with LmdbLog(tmp_path) as log:
        for chunk in range(5):
            log.append_sync("s", [track(0, chunk * 1000 + i) for i in range(1000)])
        assert [r.seq for r in log.scan(4998, 5003)] == list(range(4998, 5001))
        assert [r.seq for r in log.scan(1020, 1022)] == [1020, 1021, 1022]
        assert sum(1 for _ in log.scan(1000)) == 4001  # crosses several read chunks
        assert list(log.scan(6000)) == []
        assert list(log.scan(10, 5)) == []
        assert [seq for seq, _ in log.scan_raw(0, 2)] == [1, 2]
        got = log.get(1234)
        assert got is not None and got.event["properties"]["n"] == 1233
        assert log.get(9999) is None
        assert (log.first_seq(), log.last_seq()) == (1, 5000)


def test_seq_at_time_finds_the_first_event_at_or_after_a_time(tmp_path: Path) -> None:
    with LmdbLog(tmp_path) as log:
        assert log.seq_at_time(now_us()) == 1  # empty log
        results = [log.append_sync("s", [track(0, i), track(0, i)]) for i in range(6)]
        times = [r.received_at for r in results]
        assert times == sorted(set(times)), "each commit should have its own, later time"
        assert log.seq_at_time(0) == 1
        assert log.seq_at_time(times[0]) == 1
        assert log.seq_at_time(times[3]) == results[3].first_seq == 7
        assert log.seq_at_time(times[3] - 1) == 7
        assert log.seq_at_time(times[3] + 1) == 9
        assert log.seq_at_time(times[-1] + 1) == 13  # after the end: last_seq + 1


def test_named_cursors_and_side_tables_are_durable(tmp_path: Path) -> None:
    with LmdbLog(tmp_path) as log:
        assert log.get_cursor("dest:a") is None
        log.set_cursor("dest:a", 10)
        log.set_cursor("dest:b", 7)
        log.set_cursor("dest:a", 12)
        assert log.cursors() == {"dest:a": 12, "dest:b": 7}
        log.write_batch([(b"checkpoints", b"pg", b"id=5"), (b"checkpoints", b"pg2", b"x")])
        log.delete_value(b"checkpoints", b"pg2")
        with pytest.raises(LogError, match="no side table"):
            log.put_value(b"nope", b"k", b"v")
    with LmdbLog(tmp_path) as log:
        assert log.cursors() == {"dest:a": 12, "dest:b": 7}
        assert log.items(b"checkpoints") == [(b"pg", b"id=5")]
        assert log.items(CURSORS, prefix=b"dest:b") == [(b"dest:b", (7).to_bytes(8, "big"))]


async def test_append_writes_events_rejected_items_and_side_ops_in_one_commit(
    tmp_path: Path,
) -> None:
    log = LmdbLog(tmp_path)
    bad = RejectedItem("web", now_us(), "`event` is required", {"type": "track"})
    result = await log.append(
        "web", [track(1, 0)], rejected=[bad], side_ops=[(b"checkpoints", b"web", b"42")]
    )
    assert (result.first_seq, result.last_seq, result.rejected) == (1, 1, 1)
    empty = await log.append("web", [], side_ops=[(b"checkpoints", b"web", b"43")])
    assert empty.count == 0 and empty.first_seq == 2
    await log.aclose()
    with pytest.raises(LogClosedError):
        await log.append("web", [track(1, 1)])
    with LmdbLog(tmp_path) as again:
        assert [item.reason for _, item in again.rejected()] == ["`event` is required"]
        assert again.get_value(b"checkpoints", b"web") == b"43"
        assert again.stats().rejected == 1


def test_stats_report_count_range_times_and_bytes_on_disk(tmp_path: Path) -> None:
    with LmdbLog(tmp_path) as log:
        empty = log.stats()
        assert (empty.events, empty.first_seq, empty.last_seq, empty.first_time) == (
            0,
            None,
            None,
            None,
        )
        a = log.append_sync("s", [track(0, i) for i in range(10)])
        b = log.append_sync("s", [track(0, i) for i in range(5)])
        stats = log.stats()
    assert (stats.events, stats.first_seq, stats.last_seq) == (15, 1, 15)
    assert stats.first_time == iso_us(a.received_at)
    assert stats.last_time == iso_us(b.received_at)
    assert stats.bytes == (tmp_path / "log" / "data.mdb").stat().st_blocks * 512 > 0


def test_iso_us_keeps_every_microsecond() -> None:
    assert iso_us(1_714_564_800_123_457) == "2024-05-01T12:00:00.123457Z"
    assert iso_us(0) == "1970-01-01T00:00:00.000000Z"


def test_the_map_grows_by_itself_when_it_fills(tmp_path: Path) -> None:
    start = 256 * 1024
    with LmdbLog(tmp_path, map_size=start) as log:
        big = {"type": "track", "event": "Blob", "userId": "u", "properties": {"b": "x" * 2000}}
        for _ in range(20):
            log.append_sync("s", [big] * 50)
        assert log.env.info()["map_size"] > start
        assert log.stats().events == 1000
    with LmdbLog(tmp_path, map_size=start) as log:  # a smaller map on reopen is fine
        assert log.last_seq() == 1000


async def test_a_full_map_without_growth_fails_cleanly_and_the_log_reopens_intact(
    tmp_path: Path,
) -> None:
    log = LmdbLog(tmp_path, map_size=256 * 1024, grow=False)
    big = {"type": "track", "event": "Blob", "userId": "u", "properties": {"b": "x" * 1000}}
    acknowledged = 0
    with pytest.raises(LogFullError, match="nothing of this append was written"):
        for _ in range(1000):
            await log.append("s", [big] * 10)
            acknowledged += 10
    assert acknowledged > 0
    before = log.stats()
    assert before.events == acknowledged, "a part of the failed append was stored"
    # Small appends that still fit keep working; the log is not wedged.
    await log.append("s", [{"type": "track", "event": "Small", "userId": "u"}])
    await log.aclose()
    with LmdbLog(tmp_path, readonly=True) as again:
        records = list(again.scan())
        assert [r.seq for r in records] == list(range(1, acknowledged + 2))
        assert records[-1].event["event"] == "Small"


def test_max_size_caps_growth_with_a_clear_error(tmp_path: Path) -> None:
    with LmdbLog(tmp_path, map_size=128 * 1024, max_size=512 * 1024) as log:
        big = {"type": "track", "event": "Blob", "userId": "u", "properties": {"b": "x" * 4000}}
        with pytest.raises(LogFullError, match=r"maximum size \(524288 bytes\)"):
            for _ in range(1000):
                log.append_sync("s", [big] * 5)
        assert log.env.info()["map_size"] == 512 * 1024
        assert log.stats().events % 5 == 0


def test_readonly_open_of_a_missing_log_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LogError, match=r"no event log at .*run `headwater serve` or `import`"):
        LmdbLog(tmp_path, readonly=True)
    with LmdbLog(tmp_path) as log:
        log.append_sync("s", [track(0, 0)])
    with LmdbLog(tmp_path, readonly=True) as ro, pytest.raises(LogError, match="read-only"):
        ro.append_sync("s", [track(0, 1)])


def test_reads_from_other_threads_during_map_growth_stay_consistent(tmp_path: Path) -> None:
    log = LmdbLog(tmp_path, map_size=128 * 1024)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                last = log.last_seq()
                assert sum(1 for _ in log.scan(max(1, last - 20), last)) == min(last, 21)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        big = {"type": "track", "event": "Blob", "userId": "u", "properties": {"b": "y" * 3000}}
        for _ in range(40):
            log.append_sync("s", [big] * 10)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert log.env.info()["map_size"] > 128 * 1024
    assert log.stats().events == 400
    log.close()


async def test_appends_waiting_when_close_is_called_fail_with_log_closed(tmp_path: Path) -> None:
    log = LmdbLog(tmp_path)
    await log.append("s", [track(0, 0)])
    waiting = [asyncio.ensure_future(log.append("s", [track(0, i)])) for i in range(1, 4)]
    await asyncio.sleep(0)  # they are queued; the first may already be committing
    log.close()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    for outcome in outcomes:
        assert not isinstance(outcome, BaseException) or isinstance(outcome, LogClosedError)
    with LmdbLog(tmp_path) as again:
        committed = sum(1 for o in outcomes if not isinstance(o, BaseException))
        assert again.last_seq() == 1 + committed
