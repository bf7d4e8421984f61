"""Dead letters from outside the router: list, purge, ask for a redrive.

These run in any process (the CLI while a daemon runs: LMDB serialises writers across
processes). Purge deletes directly: no router keeps dead letters in memory. Redrive does
not move anything itself, because the running router owns the retry table and its
in-memory schedule; it writes a request the router acts on within about a second, or at
its next start when no daemon runs.
"""

from __future__ import annotations

from ..log import AnyLog, now_us
from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    DeadLetter,
    RedriveRequest,
    decode_dead_letter,
    decode_redrive,
    encode,
    event_prefix,
    redrive_key,
)


def list_dead_letters(
    log: AnyLog, destination: str, *, limit: int | None = None
) -> list[DeadLetter]:
    """The destination's dead letters in log order (the first ``limit`` of them)."""
    rows = log.items(DEAD_LETTERS, event_prefix(destination))
    if limit is not None:
        rows = rows[:limit]
    return [decode_dead_letter(raw) for _key, raw in rows]


def count_dead_letters(log: AnyLog, destination: str) -> int:
    return len(log.items(DEAD_LETTERS, event_prefix(destination)))


def purge_dead_letters(log: AnyLog, destination: str) -> int:
    """Delete every dead letter of the destination in one transaction; return how many."""
    keys = [key for key, _raw in log.items(DEAD_LETTERS, event_prefix(destination))]
    if keys:
        log.write_batch([(DEAD_LETTERS, key, None) for key in keys])
    return len(keys)


def request_redrive(log: AnyLog, destination: str, *, by: str = "cli") -> RedriveRequest:
    """Ask the router to re-queue the dead letters recorded up to now."""
    request = RedriveRequest(requested_at=now_us(), requested_by=by)
    log.write_batch([(DESTINATIONS, redrive_key(destination), encode(request))])
    return request


def pending_redrive(log: AnyLog, destination: str) -> RedriveRequest | None:
    raw = log.get_value(DESTINATIONS, redrive_key(destination))
    return None if raw is None else decode_redrive(raw)
