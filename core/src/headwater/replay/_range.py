"""From what an operator types (`--from 2024-05-01`, `--to 2h`, `--rate 500/s`) to a seq
range and an events-per-second cap.

Times are when Headwater received the events (the log's commit time, which the log is
ordered and indexed by), not the ``timestamp`` a client put in them: that is what a seq
range can be cut by, and what "the events of last May" means for a log that kept them.
A time is an ISO 8601 date or date-time (no zone = UTC), or a duration meaning "that long
ago" (``30m``, ``12h``, ``7d``). ``--from`` is inclusive, ``--to`` exclusive.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..config import parse_duration
from ..log import AnyLog, iso_us, now_us

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PER |= {"h": 3600.0, "hour": 3600.0}


class RangeError(ValueError):
    """A time, rate or range that cannot be used; the message says what to write."""


def parse_time(text: str, *, now: int | None = None, option: str = "--from") -> int:
    """Microseconds since the epoch for an ISO 8601 time or an 'ago' duration."""
    value = text.strip()
    if value == "now":
        return now if now is not None else now_us()
    if value and value[0].isdigit() and not re.match(r"^\d{4}-", value):
        try:
            seconds = parse_duration(value)
        except ValueError:
            pass
        else:
            return (now if now is not None else now_us()) - int(seconds * 1_000_000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RangeError(
            f"{option} {text!r}: write an ISO 8601 time (2024-05-01 or 2024-05-01T12:00:00Z) "
            "or a duration ago (30m, 12h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def parse_rate(text: str | float | int | None) -> float | None:
    """Events per second from ``500``, ``500/s``, ``30000/m`` or ``1e6/h``-like numbers."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        rate = float(text)
    else:
        match = _RATE.match(str(text))
        if not match:
            raise RangeError(
                f"--rate {text!r}: write events per second (500 or 500/s), or per minute or "
                "hour (30000/m, 1000000/h)"
            )
        rate = float(match.group(1)) / _PER[match.group(2) or "s"]
    if rate <= 0:
        raise RangeError(f"--rate {text!r}: the rate must be above 0 events per second")
    return rate


def resolve_range(
    log: AnyLog, from_text: str | None, to_text: str | None, *, now: int | None = None
) -> tuple[int, int, str | None, str | None]:
    """(first_seq, last_seq, from, to): the inclusive seq range of events received in
    ``[from, to)``, with the times as ISO text for the job record. Without ``--from`` the
    range starts at the oldest event kept; without ``--to`` it ends at the newest event now.
    An empty range has ``last_seq < first_seq``."""
    now = now if now is not None else now_us()
    from_us = parse_time(from_text, now=now, option="--from") if from_text else None
    to_us = parse_time(to_text, now=now, option="--to") if to_text else None
    if from_us is not None and to_us is not None and to_us <= from_us:
        raise RangeError(
            f"--to {to_text!r} is not after --from {from_text!r}; the range would be empty"
        )
    oldest = max(1, log.first_seq())
    last = log.last_seq()
    first_seq = max(oldest, log.seq_at_time(from_us)) if from_us is not None else oldest
    last_seq = min(last, log.seq_at_time(to_us) - 1) if to_us is not None else last
    return (
        first_seq,
        last_seq,
        iso_us(from_us) if from_us is not None else None,
        iso_us(to_us) if to_us is not None else None,
    )
