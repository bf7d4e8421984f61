"""What the log stores: one msgpack record per event, keyed by its sequence number."""

from __future__ import annotations

import struct
from typing import Any

import msgspec

_SEQ = struct.Struct(">Q")


class LogRecord(msgspec.Struct, array_like=True, frozen=True):
    """One stored event. ``received_at`` is microseconds since the epoch, assigned by the log
    at commit and never decreasing along the sequence, so time lookups can bisect."""

    seq: int
    source: str
    received_at: int
    event: dict[str, Any]


class RecordHeader(msgspec.Struct, array_like=True, frozen=True):
    """A record with its event left as msgpack bytes: for scans that only need position and
    time, and for writing an event that was encoded before its sequence was known."""

    seq: int
    source: str
    received_at: int
    event: msgspec.Raw


class RejectedItem(msgspec.Struct, array_like=True, frozen=True):
    """Something a client sent that failed validation, kept with the reason."""

    source: str
    received_at: int
    reason: str
    raw: Any


class AppendResult(msgspec.Struct, frozen=True):
    """Where an append landed: sequence range (empty when no events) and commit time."""

    first_seq: int
    last_seq: int
    received_at: int
    rejected: int = 0

    @property
    def count(self) -> int:
        return self.last_seq - self.first_seq + 1 if self.last_seq >= self.first_seq else 0


class LogStats(msgspec.Struct, frozen=True):
    events: int
    first_seq: int | None
    last_seq: int | None
    first_time: str | None
    last_time: str | None
    bytes: int
    rejected: int = 0


def seq_key(seq: int) -> bytes:
    return _SEQ.pack(seq)


def seq_keys(first: int, count: int) -> list[bytes]:
    """The keys of ``count`` sequences from ``first``, built without a Python call each."""
    return list(map(_SEQ.pack, range(first, first + count)))


def key_seq(key: bytes | memoryview) -> int:
    value: int = _SEQ.unpack(key)[0]
    return value
