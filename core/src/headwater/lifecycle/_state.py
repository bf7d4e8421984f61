"""A destination's lifecycle state in the log: paused, and forgotten.

Both are plain log writes, so the CLI can make them with or without a running daemon (LMDB
serialises writers across processes). A running daemon notices a pause flag within about
a second (``Reloader`` polls the flags) and stops or starts the destination's loop; a
paused destination keeps its cursor, so it only accumulates lag, and it stays paused
across restarts until resumed.

Removing a destination from the config keeps everything it had in the log (cursor,
counters, parked retries, dead letters): connected again under the same id, it resumes
where it was. ``forget`` deletes all of that for good, once the destination is no longer
configured: in chunks, the cursor last, so a killed ``forget`` is finished by running it
again.
"""

from __future__ import annotations

import msgspec

from ..log import CURSORS, AnyLog, key_seq, now_us
from ..router import DEAD_LETTERS, DESTINATIONS, RETRIES
from ..router._records import (
    cursor_key,
    event_prefix,
    is_paused,
    pause_key,
    redrive_key,
    redriving_key,
    stats_key,
)

_encoder = msgspec.msgpack.Encoder()


def set_paused(log: AnyLog, destination: str, paused: bool) -> bool:
    """Write or clear the pause flag; return whether anything changed."""
    if is_paused(log, destination) == paused:
        return False
    value = _encoder.encode(now_us()) if paused else None
    log.write_batch([(DESTINATIONS, pause_key(destination), value)])
    return True


def paused_destinations(log: AnyLog, destinations: list[str]) -> set[str]:
    return {d for d in destinations if is_paused(log, d)}


class ForgetResult(msgspec.Struct, kw_only=True):
    destination: str
    cursor: int | None
    dead_letters: int
    retries: int

    @property
    def anything(self) -> bool:
        return self.cursor is not None or bool(self.dead_letters or self.retries)


def known_destinations(log: AnyLog) -> list[str]:
    """Every destination the log holds state for (configured or not)."""
    prefix = b"destination:"
    return sorted(
        key[len(prefix) :].decode("utf-8", "replace") for key, _ in log.items(CURSORS, prefix)
    )


FORGET_CHUNK = 1000
"""Keys deleted per write by ``forget`` (a destination may hold millions of dead letters)."""


def forget_destination(log: AnyLog, destination: str) -> ForgetResult:
    """Delete the destination's parked retries and dead letters, a chunk of keys per write,
    then its cursor, counters and flags in one last write. The caller checks it is no
    longer configured.

    The cursor goes last on purpose: killed halfway, the destination still has its cursor,
    so `headwater destinations` still lists it as no longer configured and running ``forget``
    again deletes the rest. It is never taken for a fresh destination with leftovers: were
    the cursor deleted first, a destination configured again under the id would start
    afresh and yet load the old retries."""
    raw = log.get_value(CURSORS, cursor_key(destination))
    parked = _delete_chunked(log, RETRIES, event_prefix(destination))
    letters = _delete_chunked(log, DEAD_LETTERS, event_prefix(destination))
    log.write_batch(
        [
            (DESTINATIONS, redrive_key(destination), None),
            (DESTINATIONS, redriving_key(destination), None),
            (DESTINATIONS, pause_key(destination), None),
            (DESTINATIONS, stats_key(destination), None),
            (CURSORS, cursor_key(destination), None),
        ]
    )
    return ForgetResult(
        destination=destination,
        cursor=key_seq(raw) if raw is not None else None,
        dead_letters=letters,
        retries=parked,
    )


def _delete_chunked(log: AnyLog, table: bytes, prefix: bytes) -> int:
    deleted = 0
    for rows in log.walk(table, prefix, chunk=FORGET_CHUNK):
        log.write_batch([(table, key, None) for key, _ in rows])
        deleted += len(rows)
    return deleted
