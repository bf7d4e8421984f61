"""What the router keeps in the log's side tables, and under which keys.

Every record is a msgspec Struct stored as msgpack. Keys of per-event tables are
``<destination id> NUL <8-byte big-endian seq>``, so one destination's entries are a key
prefix and come back in log order.

- ``cursors``      ``destination:<id>`` -> the lowest seq not yet finished (see _state.py)
- ``retries``      ``<id>\\0<seq>`` -> PendingRecord: an event waiting for another attempt,
                   or waiting behind an earlier event of the same user that is
- ``dead_letters`` ``<id>\\0<seq>`` -> DeadLetter
- ``destinations`` ``stats\\0<id>`` -> DestinationRecord (counters, state, owning pid)
                   ``redrive\\0<id>`` -> RedriveRequest (written by `headwater dlq redrive`)
                   ``redriving\\0<id>`` -> RedriveProgress (a redrive the LMDB router
                   carries out, see _redrive.py)
                   ``paused\\0<id>`` -> time paused (`headwater destinations pause`)
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..log import CURSORS, key_seq, seq_key

DEAD_LETTERS = b"dead_letters"
RETRIES = b"retries"
DESTINATIONS = b"destinations"
_SEP = b"\x00"

State = Literal["starting", "running", "backing_off", "stopped", "disabled", "failed", "paused"]


class DeadLetter(msgspec.Struct, kw_only=True):
    """An event the destination will not get without a redrive: refused for good, or out
    of retries. Times are microseconds since the epoch."""

    destination: str
    seq: int
    reason: str
    attempts: int
    first_attempt_at: int
    last_attempt_at: int
    source: str
    received_at: int
    event: dict[str, Any]


class PendingRecord(msgspec.Struct, kw_only=True):
    """An event parked for a later attempt. ``attempts`` is 0 for an event that was never
    sent because an earlier event of the same user was still pending, and for a redriven
    dead letter; ``next_at`` 0 means "as soon as it is the user's turn"."""

    seq: int
    user: str
    source: str
    received_at: int
    event: dict[str, Any]
    attempts: int = 0
    first_attempt_at: int = 0
    last_attempt_at: int = 0
    next_at: int = 0
    reason: str = ""


class DestinationRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Lifetime counters and the last known state, rewritten with every router commit so
    `headwater destinations` can report them without a running daemon."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    redriven: int = 0
    state: State = "stopped"
    pid: int = 0
    started_at: int = 0
    last_delivery_at: int = 0
    last_error: str = ""
    last_error_at: int = 0
    backoff_until: int = 0
    task_failures: int = 0
    """Times a delivery task failed and the loop was restarted (router._supervise)."""
    last_failure: str = ""
    last_failure_at: int = 0
    restart_at: int = 0
    """When a failed loop starts again (0: it is not waiting to)."""


class RedriveRequest(msgspec.Struct, kw_only=True):
    """Ask the router owning a destination to re-queue its dead letters recorded at or
    before ``requested_at``."""

    requested_at: int
    requested_by: str = "cli"


class RedriveProgress(msgspec.Struct, kw_only=True):
    """A redrive the destination's router has taken up: the dead letters recorded at or
    before ``up_to`` are re-queued in seq order, a chunk at a time; those up to seq
    ``after`` are done (-1: none yet). Written and deleted by the router alone."""

    up_to: int
    after: int = -1
    requested_by: str = "cli"


def cursor_name(destination: str) -> str:
    return f"destination:{destination}"


def cursor_key(destination: str) -> bytes:
    return cursor_name(destination).encode()


def event_prefix(destination: str) -> bytes:
    return destination.encode() + _SEP


def event_key(destination: str, seq: int) -> bytes:
    return destination.encode() + _SEP + seq_key(seq)


def seq_of_key(key: bytes) -> int:
    return key_seq(key[-8:])


def stats_key(destination: str) -> bytes:
    return b"stats" + _SEP + destination.encode()


def redrive_key(destination: str) -> bytes:
    return b"redrive" + _SEP + destination.encode()


def redriving_key(destination: str) -> bytes:
    return b"redriving" + _SEP + destination.encode()


def pause_key(destination: str) -> bytes:
    """``destinations`` key of a paused destination's flag (`headwater destinations pause`):
    durable, so a paused destination stays paused across restarts."""
    return b"paused" + _SEP + destination.encode()


def is_paused(log: Any, destination: str) -> bool:
    return log.get_value(DESTINATIONS, pause_key(destination)) is not None


_encoder = msgspec.msgpack.Encoder()
_dead_letter = msgspec.msgpack.Decoder(DeadLetter)
_pending = msgspec.msgpack.Decoder(PendingRecord)
_destination = msgspec.msgpack.Decoder(DestinationRecord)
_redrive = msgspec.msgpack.Decoder(RedriveRequest)
_redriving = msgspec.msgpack.Decoder(RedriveProgress)


def encode(record: msgspec.Struct) -> bytes:
    return _encoder.encode(record)


def decode_dead_letter(raw: bytes) -> DeadLetter:
    return _dead_letter.decode(raw)


def decode_pending(raw: bytes) -> PendingRecord:
    return _pending.decode(raw)


def decode_destination(raw: bytes | None) -> DestinationRecord:
    return DestinationRecord() if raw is None else _destination.decode(raw)


def decode_redrive(raw: bytes) -> RedriveRequest:
    return _redrive.decode(raw)


__all__ = [
    "CURSORS",
    "DEAD_LETTERS",
    "DESTINATIONS",
    "RETRIES",
    "DeadLetter",
    "DestinationRecord",
    "PendingRecord",
    "RedriveRequest",
    "State",
]


def decode_redriving(raw: bytes) -> RedriveProgress:
    return _redriving.decode(raw)
