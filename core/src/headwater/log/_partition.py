"""Which partition subject an event goes to: one user, one partition, always.

On JetStream, per-user order is kept by putting every event of a user on the same
partition subject ``<stream>.p.<n>``; a partition is delivered by one daemon at a time, in
stream order. The user is ``userId``, else ``anonymousId``; events with neither (rare: a
``group`` call with only a groupId) fall back to their messageId, since no order among
them can be owed to anyone. CRC-32 is stable across processes and versions, unlike
Python's salted ``hash``, which matters because every daemon must agree.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any


def user_key(event: Mapping[str, Any]) -> str:
    """The identity whose events must stay in order."""
    for field in ("userId", "anonymousId", "messageId"):
        value = event.get(field)
        if value is not None and value != "":
            return str(value)
    return ""


def partition_of(event: Mapping[str, Any], partitions: int) -> int:
    return zlib.crc32(user_key(event).encode()) % partitions


def partition_subject(stream: str, partition: int) -> str:
    return f"{stream}.p.{partition}"


def partition_wildcard(stream: str) -> str:
    return f"{stream}.p.*"
