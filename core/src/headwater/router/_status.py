"""A destination's status as `headwater destinations` and the admin API report it.

Everything here can be read from the log alone (a running daemon is not needed): the
cursor, the counters the router rewrites with each commit, the retry and dead-letter
tables. Whether a daemon is delivering is told by the pid it recorded: alive means
``running`` (or ``backing_off``, or ``failed`` while the loop waits to restart after one
of its tasks failed), gone means ``stopped``.
"""

from __future__ import annotations

import os
import time

import msgspec

from ..log import AnyLog, iso_us, key_seq
from ._records import (
    CURSORS,
    DEAD_LETTERS,
    DESTINATIONS,
    RETRIES,
    DestinationRecord,
    cursor_key,
    decode_destination,
    event_prefix,
    pause_key,
    redrive_key,
    redriving_key,
    stats_key,
)


class DestinationStatus(msgspec.Struct, kw_only=True):
    id: str
    connector: str
    enabled: bool
    state: str
    cursor: int | None
    """The lowest log seq not yet delivered or dead-lettered (None: never started)."""
    last_seq: int
    lag_events: int
    """Log events at or after the cursor (some may be filtered out when reached)."""
    lag_seconds: float
    """Age of the oldest event not yet finished (the one at the cursor, or a parked one)."""
    pending_retries: int
    dead_letters: int
    delivered: int
    retried: int
    dead_lettered: int
    filtered: int
    redriven: int
    redrive_requested: bool = False
    last_delivery_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    backoff_until: str | None = None
    pid: int | None = None
    error: str | None = None
    """Why the destination could not start (unknown connector, bad config)."""
    task_failures: int = 0
    """Times a delivery task failed and delivery restarted from the cursor."""
    last_failure: str | None = None
    last_failure_at: str | None = None
    restart_at: str | None = None
    """When a ``failed`` destination starts delivering again."""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Received(msgspec.Struct):
    received_at: int | None = None


_received = msgspec.msgpack.Decoder(_Received)


def _count(log: AnyLog, table: bytes, destination: str) -> int:
    """Entries of the destination in a per-event table, counted from their keys alone (a
    destination may hold millions)."""
    return log.count(table, event_prefix(destination))


def _oldest(log: AnyLog, table: bytes, destination: str) -> int | None:
    """The received_at of the destination's first entry (lowest seq) in the table."""
    rows = log.page(table, event_prefix(destination), limit=1)
    return _received.decode(rows[0][1]).received_at if rows else None


def read_status(
    log: AnyLog,
    destination: str,
    *,
    connector: str,
    enabled: bool = True,
    record: DestinationRecord | None = None,
    cursor: int | None = None,
    state: str | None = None,
    pending: int | None = None,
    error: str | None = None,
) -> DestinationStatus:
    """The status from the log; a running router passes its in-memory record, cursor,
    state and pending count, which are fresher than what was last committed."""
    if record is None:
        record = decode_destination(log.get_value(DESTINATIONS, stats_key(destination)))
    if cursor is None:
        raw = log.get_value(CURSORS, cursor_key(destination))
        cursor = key_seq(raw) if raw is not None else None
    last_seq = log.last_seq()
    now = time.time_ns() // 1000
    oldest: int | None = None
    lag_events = 0
    if cursor is not None and cursor <= last_seq:
        lag_events = last_seq - cursor + 1
        head = log.get(max(cursor, log.first_seq()))
        oldest = head.received_at if head is not None else None
    n_pending = _count(log, RETRIES, destination) if pending is None else pending
    pending_oldest = _oldest(log, RETRIES, destination) if n_pending else None
    if pending_oldest is not None and (oldest is None or pending_oldest < oldest):
        oldest = pending_oldest
    n_dead = _count(log, DEAD_LETTERS, destination)
    if state is None:
        if not enabled:
            state = "disabled"
        elif error:
            state = "failed"
        elif log.get_value(DESTINATIONS, pause_key(destination)) is not None:
            state = "paused"
        elif pid_alive(record.pid):
            state = record.state
        else:
            state = "stopped"
    return DestinationStatus(
        id=destination,
        connector=connector,
        enabled=enabled,
        state=state,
        cursor=cursor,
        last_seq=last_seq,
        lag_events=lag_events,
        lag_seconds=round(max(0.0, (now - oldest) / 1e6), 3) if oldest is not None else 0.0,
        pending_retries=n_pending,
        dead_letters=n_dead,
        delivered=record.delivered,
        retried=record.retried,
        dead_lettered=record.dead_lettered,
        filtered=record.filtered,
        redriven=record.redriven,
        redrive_requested=any(  # requested, or under way (LMDB)
            log.get_value(DESTINATIONS, key(destination)) is not None
            for key in (redrive_key, redriving_key)
        ),
        last_delivery_at=iso_us(record.last_delivery_at) if record.last_delivery_at else None,
        last_error=record.last_error or None,
        last_error_at=iso_us(record.last_error_at) if record.last_error_at else None,
        backoff_until=iso_us(record.backoff_until) if record.backoff_until > now else None,
        pid=record.pid if pid_alive(record.pid) else None,
        error=error,
        task_failures=record.task_failures,
        last_failure=record.last_failure or None,
        last_failure_at=iso_us(record.last_failure_at) if record.last_failure_at else None,
        restart_at=iso_us(record.restart_at) if record.restart_at and state == "failed" else None,
    )
