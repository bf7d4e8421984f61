"""`[workspace] retention`: how much history the log keeps.

Either an age (``"400d"``, ``"12w"``, ``"36h"``: events received longer ago are trimmed)
or a size (``"50GB"``, ``"500MiB"``: the oldest events are trimmed while the events take
more than that inside the log), like Kafka's ``retention.ms`` and ``retention.bytes``.
Unset (the default) keeps every event forever. Sizes use 1000 for KB/MB/GB/TB and 1024
for KiB/MiB/GiB/TiB; the size counted is the events' pages in the LMDB file, which never
shrinks on disk (freed pages are reused for new events).
"""

from __future__ import annotations

import re

import msgspec

from ..router import parse_duration

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class RetentionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_age: float | None = None
    """Seconds."""
    max_bytes: int | None = None
    text: str = ""

    @property
    def keeps_everything(self) -> bool:
        return self.max_age is None and self.max_bytes is None


def parse_retention(text: str | None) -> RetentionPolicy:
    """Raise ValueError naming the accepted forms."""
    if text is None or not str(text).strip():
        return RetentionPolicy()
    value = str(text).strip()
    size = _SIZE.match(value)
    if size:
        max_bytes = int(float(size.group(1)) * _UNITS[size.group(2).lower()])
        if max_bytes <= 0:
            raise ValueError(f"retention = {text!r}: a size must be above 0")
        return RetentionPolicy(max_bytes=max_bytes, text=value)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(
            f'retention = {text!r}: write an age such as "400d", "12w" or "36h", or a '
            'size such as "50GB" or "500MiB"; leave it out to keep events forever'
        ) from None
    if seconds <= 0:
        raise ValueError(f"retention = {text!r}: an age must be above 0")
    return RetentionPolicy(max_age=seconds, text=value)
