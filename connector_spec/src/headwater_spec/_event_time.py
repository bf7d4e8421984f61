"""When an event happened, read the way Segment reads it.

Destinations that send an event time (Amplitude's ``time``, Mixpanel's ``properties.time``,
Customer.io's ``timestamp``, a time-ordered id) must agree on which of the event's four
time fields counts, so the same event gets the same time everywhere, and a retry sends
exactly what the first attempt sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ._events import BaseEvent


def event_time_ms(event: BaseEvent) -> int | None:
    """Milliseconds since the epoch of when ``event`` happened, or None.

    Segment's precedence: ``timestamp`` (the tracking API sets it, clock skew corrected),
    then ``originalTimestamp``, ``receivedAt``, ``sentAt``; the first that parses as ISO
    8601 wins, a time without an offset is UTC.
    """
    for value in (event.timestamp, event.originalTimestamp, event.receivedAt, event.sentAt):
        if not value:
            continue
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    return None
