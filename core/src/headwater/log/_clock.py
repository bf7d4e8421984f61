"""The log's clock: microseconds since the epoch, and their ISO 8601 form."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_us() -> int:
    return time.time_ns() // 1000


def iso_us(us: int) -> str:
    """ISO 8601 UTC with microseconds; integer arithmetic so no float rounding creeps in."""
    seconds, micros = divmod(us, 1_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")
