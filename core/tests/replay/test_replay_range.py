"""From what an operator types to a seq range and a rate: times, durations, rates, and the
range a time window cuts out of a real log."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from headwater.log import LmdbLog, now_us
from headwater.replay import RangeError, parse_rate, parse_time, resolve_range

from .conftest import event

NOW = int(datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T14:30:00+02:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_iso_times_without_a_zone_are_utc(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == int(expected.timestamp() * 1_000_000)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("12h", 43200), ("7d", 604800), ("1h30m", 5400)]
)
def test_a_duration_means_that_long_ago(text: str, seconds: int) -> None:
    assert parse_time(text, now=NOW) == NOW - seconds * 1_000_000


def test_now_and_bad_times() -> None:
    assert parse_time("now", now=NOW) == NOW
    with pytest.raises(RangeError, match=r"--to 'last tuesday'.*ISO 8601.*7d"):
        parse_time("last tuesday", now=NOW, option="--to")


@pytest.mark.parametrize(
    ("text", "rate"),
    [("500", 500.0), ("500/s", 500.0), ("30000/m", 500.0), ("3600/h", 1.0), (250, 250.0)],
)
def test_rates_are_events_per_second(text: str | int, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "fast", "-5/s", "10/d"])
def test_bad_rates_say_what_to_write(text: str) -> None:
    with pytest.raises(RangeError, match="--rate"):
        parse_rate(text)


def test_no_rate_is_unpaced() -> None:
    assert parse_rate(None) is None


def test_a_time_window_cuts_the_seqs_received_in_it(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(10)])
    time.sleep(0.01)
    t1 = now_us()
    time.sleep(0.01)
    log.append_sync("web", [event(n) for n in range(10, 25)])
    time.sleep(0.01)
    t2 = now_us()
    time.sleep(0.01)
    log.append_sync("web", [event(n) for n in range(25, 30)])

    def iso(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat()

    first, last, start, end = resolve_range(log, iso(t1), iso(t2))
    assert (first, last) == (11, 25)
    assert start is not None and end is not None and start < end
    assert resolve_range(log, None, None)[:2] == (1, 30)
    assert resolve_range(log, iso(t2), None)[:2] == (26, 30)
    assert resolve_range(log, None, iso(t1))[:2] == (1, 10)
    later = resolve_range(log, iso(now_us() + 10_000_000), None)
    assert later[1] < later[0], "nothing received after --from: an empty range"
    with pytest.raises(RangeError, match="not after"):
        resolve_range(log, iso(t2), iso(t1))


def test_the_range_starts_at_the_oldest_event_kept(log: LmdbLog) -> None:
    log.append_sync("web", [event(n) for n in range(20)])
    log.trim(5)
    assert resolve_range(log, None, None)[:2] == (6, 20)
    assert resolve_range(log, "2000-01-01", None)[:2] == (6, 20)
