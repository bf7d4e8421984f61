"""`[workspace] retention`: how much history the log keeps.

Either an age, a duration (``"400d"``, ``"12w"``, ``"1d12h"``: events received longer ago
are trimmed), or a size (``"50GB"``, ``"500MiB"``: the oldest events are trimmed while the
events take more than that inside the log), like Kafka's ``retention.ms`` and
``retention.bytes``. Unset (the default) keeps every event forever. Sizes use 1000 for
KB/MB/GB/TB and 1024 for KiB/MiB/GiB/TiB, in any letter case; the size counted is the
events' pages in the LMDB file, which never shrinks on disk (freed pages are reused for new
events). Either must be above 0; blank is the same as unset (so ``"${RETENTION:-}"``
works).

The syntax lives here, with the config, so that the validator, the loader (which refuses a
bad value when the config is read or reloaded) and the retention service share it.
"""

from __future__ import annotations

import re

import msgspec

from ._durations import DURATION_BODY, parse_duration

_SIZE_UNITS = {
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
_SIZE_BODY = r"\s*([0-9]+(?:\.[0-9]+)?)\s*([Bb]|[KkMmGgTt][Ii]?[Bb])\s*"
_SIZE = re.compile(_SIZE_BODY)
RETENTION_PATTERN = rf"^(?:{_SIZE_BODY}|{DURATION_BODY}|\s*)$"
"""A size, a duration or blank, as a JSON Schema ``pattern`` (zero passes it; the loader
refuses it)."""


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
    size = _SIZE.fullmatch(value)
    if size:
        max_bytes = int(float(size.group(1)) * _SIZE_UNITS[size.group(2).lower()])
        if max_bytes <= 0:
            raise ValueError(f"retention = {text!r}: a size must be above 0")
        return RetentionPolicy(max_bytes=max_bytes, text=value)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(
            f'retention = {text!r}: write an age such as "400d", "12w" or "1d12h", or a '
            'size such as "50GB" or "500MiB"; leave it out to keep events forever'
        ) from None
    if seconds <= 0:
        raise ValueError(f"retention = {text!r}: an age must be above 0")
    return RetentionPolicy(max_age=seconds, text=value)
