"""Event times: the cached reading agrees with ``datetime.fromisoformat`` on any text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater_tracking_api._times import MAX_MS, MIN_MS, epoch_ms, format_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference_ms(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
zones = st.sampled_from(["Z", "+00:00", "", "+02:00", "-05:30", "z", " Z"])
fractions = st.sampled_from(
    ["", ".1", ".12", ".123", ".1234", ".123456", ".1234567", ".\u0661\u0662\u0663"]
)
noise = st.text(alphabet="0123456789-:T .Z+\u0661", max_size=8)


@st.composite
def times(draw: st.DrawFn) -> str:
    moment = draw(moments)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") if moment.year >= 1000 else moment.isoformat()[:19]
    text = text[:10] + draw(st.sampled_from("T T")) + text[11:]
    return text + draw(fractions) + draw(zones) + draw(st.just("") | noise)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(times() | noise, min_size=1, max_size=6))
def test_epoch_ms_reads_what_fromisoformat_reads(texts: list[str]) -> None:
    for text in texts * 2:  # the second round hits the cache
        assert epoch_ms(text) == reference_ms(text), text


def test_common_forms() -> None:
    base = reference_ms("2024-05-01T12:00:00Z")
    assert base is not None
    for text, ms in [
        ("2024-05-01T12:00:00.123Z", 123),
        ("2024-05-01T12:00:00.123456+00:00", 123),
        ("2024-05-01T12:00:00.999999Z", 999),
        ("2024-05-01T12:00:00", 0),
        ("2024-05-01T12:00:00+02:00", -2 * 3600 * 1000),
    ]:
        assert epoch_ms(text) == base + ms, text
        assert epoch_ms(text) == base + ms, text  # cached
    assert epoch_ms("2024-05-01T12:00:00garbage") is None
    assert epoch_ms("2024-05-01T12:00:0\u0661.123Z") is None
    assert epoch_ms("yesterday") is None


@settings(max_examples=500)
@given(ms=st.integers(min_value=MIN_MS, max_value=MAX_MS))
def test_format_ms_writes_what_it_reads(ms: int) -> None:
    text = format_ms(ms)
    assert len(text) == 24 and text.endswith("Z")
    assert epoch_ms(text) == ms == reference_ms(text)
