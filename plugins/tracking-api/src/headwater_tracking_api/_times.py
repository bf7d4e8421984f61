"""ISO 8601 times as integer milliseconds since the epoch, and back, cheaply per event.

Every event carries a time the server reads (``timestamp``) and one it writes (the skew-
corrected ``timestamp``). Parsing with ``datetime.fromisoformat`` and converting to the
epoch cost ~4,000 instructions per event, more than validating it; formatting a datetime
cost more still. Both go through caches here:

- reading: the ``YYYY-MM-DDTHH:MM:SS`` prefix of a time, as clients write it, maps to its
  epoch milliseconds (filled by ``fromisoformat`` on the first miss, and only for prefixes
  that read back exactly, so no text is accepted that ``fromisoformat`` would refuse); the
  rest (``.123Z``, ``.123456+00:00``, ``Z``, ...) is looked up among the UTC forms SDKs send.
  Anything else (other offsets, other precisions) takes ``fromisoformat``: same result.
- writing: the prefix of an epoch second is formatted once.

Both caches are bounded (cleared when full): client text fills one of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MIN_SECOND, MAX_SECOND = -62135596800, 253402300799
"""0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: the years ISO 8601 writes with 4 digits."""
MIN_MS, MAX_MS = MIN_SECOND * 1000, MAX_SECOND * 1000 + 999
MAX_CACHED = 4096

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)
_fromisoformat = datetime.fromisoformat

MILLIS_Z = tuple(f".{n:03d}Z" for n in range(1000))
_UTC_ZONES = ("", "Z", "+00:00")
_TAIL_MS: dict[str, int] = {zone: 0 for zone in _UTC_ZONES}
_TAIL_MS.update({f".{n:03d}{zone}": n for n in range(1000) for zone in _UTC_ZONES})
"""What follows the seconds, for the UTC forms with milliseconds: ``.123Z`` -> 123."""
_DIGITS3 = frozenset(f"{n:03d}" for n in range(1000))
_SECOND_MS: dict[str, int] = {}
"""``YYYY-MM-DDTHH:MM:SS`` (naive, as sent) -> epoch milliseconds."""
SECOND_PREFIXES: dict[int, str] = {}
"""Epoch second -> ``YYYY-MM-DDTHH:MM:SS``."""


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, truncated (as the written form is: ``.mmm``); a naive
    time is UTC."""
    return (moment - (_EPOCH if moment.tzinfo is not None else _NAIVE_EPOCH)) // _MS


def epoch_ms(text: str) -> int | None:
    """The epoch milliseconds of an ISO 8601 time (naive means UTC), truncated; None when
    ``fromisoformat`` cannot read it."""
    second = _SECOND_MS.get(text[:19])
    if second is not None:
        tail = text[19:]
        fraction = _TAIL_MS.get(tail)
        if fraction is not None:
            return second + fraction
        # microseconds, as Python SDKs write them: .123456+00:00
        fraction = _TAIL_MS.get(tail[:4])
        if fraction is not None and tail[4:7] in _DIGITS3 and tail[7:] in _UTC_ZONES:
            return second + fraction
    try:
        moment = _fromisoformat(text)
    except (TypeError, ValueError):
        return None
    _remember_second(text[:19])
    return to_ms(moment)


def _remember_second(prefix: str) -> None:
    if len(prefix) != 19 or prefix in _SECOND_MS:
        return
    try:
        moment = _fromisoformat(prefix)
    except ValueError:
        return
    if moment.tzinfo is not None:
        return
    if moment.isoformat(sep=prefix[10]) != prefix:  # e.g. other digits than 0-9
        return
    if len(_SECOND_MS) >= MAX_CACHED:
        _SECOND_MS.clear()
    _SECOND_MS[prefix] = to_ms(moment)


def format_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``; callers keep ``ms`` within MIN_MS..MAX_MS."""
    second, milli = divmod(ms, 1000)
    prefix = SECOND_PREFIXES.get(second)
    if prefix is None:
        moment = datetime.fromtimestamp(second, UTC)
        prefix = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if moment.year < 1000:  # strftime drops leading zeros of small years
            prefix = moment.isoformat()[:19]
        if len(SECOND_PREFIXES) >= MAX_CACHED:
            SECOND_PREFIXES.clear()
        SECOND_PREFIXES[second] = prefix
    return prefix + MILLIS_Z[milli]
