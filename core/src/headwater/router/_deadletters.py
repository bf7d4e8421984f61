"""Dead letters from outside the router: list, purge, ask for a redrive.

These run in any process (the CLI while a daemon runs: LMDB serialises writers across
processes). Purge deletes directly: no router keeps dead letters in memory. Redrive does
not move anything itself, because the running router owns the retry table and its
in-memory schedule; it writes a request the router acts on within about a second, or at
its next start when no daemon runs.

A destination may hold millions of dead letters (a broken endpoint for a day), so none of
this loads the table: listing is by pages of the key order (the cursor is the last seq
shown), counting reads keys only, and purge walks the table in chunks.
"""

from __future__ import annotations

import msgspec

from ..log import AnyLog, now_us
from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    DeadLetter,
    RedriveRequest,
    decode_dead_letter,
    decode_redrive,
    encode,
    event_key,
    event_prefix,
    redrive_key,
)

PAGE_LIMIT = 100
"""Dead letters per page by default (`headwater dlq list`, the admin API)."""
MAX_PAGE_LIMIT = 10_000
PURGE_CHUNK = 1000


class DeadLetterPage(msgspec.Struct, kw_only=True):
    letters: list[DeadLetter]
    next: int | None
    """The seq to pass as ``after`` for the next page; None on the last page."""


def dead_letter_page(
    log: AnyLog, destination: str, *, limit: int = PAGE_LIMIT, after: int | None = None
) -> DeadLetterPage:
    """Up to ``limit`` dead letters of the destination in log order, those after seq
    ``after`` (from the start when None). Memory is bounded by ``limit``."""
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"`limit` must be between 1 and {MAX_PAGE_LIMIT}, got {limit}")
    if after is not None and after < 0:
        raise ValueError(f"`after` must be a seq (0 or more), got {after}")
    start = None if after is None else event_key(destination, after)
    rows = log.page(DEAD_LETTERS, event_prefix(destination), after=start, limit=limit + 1)
    letters = [decode_dead_letter(raw) for _key, raw in rows[:limit]]
    return DeadLetterPage(letters=letters, next=letters[-1].seq if len(rows) > limit else None)


def list_dead_letters(
    log: AnyLog, destination: str, *, limit: int | None = None
) -> list[DeadLetter]:
    """The destination's dead letters in log order (the first ``limit`` of them). Without
    a limit this loads them all: for tests and small tables; tools use pages."""
    if limit is not None:
        return dead_letter_page(log, destination, limit=limit).letters
    return [
        decode_dead_letter(raw) for _key, raw in log.items(DEAD_LETTERS, event_prefix(destination))
    ]


def count_dead_letters(log: AnyLog, destination: str) -> int:
    """How many dead letters the destination has, from their keys alone."""
    return log.count(DEAD_LETTERS, event_prefix(destination))


class _Stamp(msgspec.Struct):
    last_attempt_at: int


_stamp = msgspec.msgpack.Decoder(_Stamp)


def purge_dead_letters(log: AnyLog, destination: str) -> int:
    """Delete the destination's dead letters recorded up to now (the last attempt at or
    before the purge started; ones dead-lettered while it runs are kept), a chunk per
    write; return how many. Killed halfway, it leaves the rest for the next purge."""
    started = now_us()
    purged = 0
    for rows in log.walk(DEAD_LETTERS, event_prefix(destination), chunk=PURGE_CHUNK):
        ops = [
            (DEAD_LETTERS, key, None)
            for key, raw in rows
            if _stamp.decode(raw).last_attempt_at <= started
        ]
        if ops:
            log.write_batch(ops)
            purged += len(ops)
    return purged


def request_redrive(log: AnyLog, destination: str, *, by: str = "cli") -> RedriveRequest:
    """Ask the router to re-queue the dead letters recorded up to now."""
    request = RedriveRequest(requested_at=now_us(), requested_by=by)
    log.write_batch([(DESTINATIONS, redrive_key(destination), encode(request))])
    return request


def pending_redrive(log: AnyLog, destination: str) -> RedriveRequest | None:
    raw = log.get_value(DESTINATIONS, redrive_key(destination))
    return None if raw is None else decode_redrive(raw)
