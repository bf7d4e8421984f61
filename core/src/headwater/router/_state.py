"""A destination's durable state, and the one writer that commits it.

Lanes stage side-table writes (dead letters, parked events, deletions) and mark seqs
finished; this committer turns whatever accumulated into ONE log transaction together with
the new cursor (the watermark's low) and the destination's counters, so the cursor never
moves past an event unless the record that owns it now (a dead letter or a parked retry)
is written in the same transaction. Commits go through the log's group commit
(``append`` with only side writes), so they share the fsync of concurrent ingestion
instead of competing with it. One commit per destination is in flight at a time; lanes
never wait for it (a crash before it lands only means those events are sent again).

A commit sent to the log runs to its end even when the committer is cancelled (a stop, a
failed task): on LMDB a cancelled ``append`` is still written (the writer's queue), but on
JetStream a commit is a sequence of KV writes on the log's own loop, and cancelling it
would cut it short, losing the rest of its writes (they are no longer staged). So the
write is shielded, and the next commit, ``save_record`` and whoever reads the committed
state after a cancel wait for it first (``landed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any, Literal

from ..log import CURSORS, AnyLog, LogClosedError, seq_key
from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    DeadLetter,
    DestinationRecord,
    cursor_key,
    encode,
    event_key,
    stats_key,
)
from ._watermark import Watermark

SideOp = tuple[bytes, bytes, bytes | None]
COMMIT_INTERVAL = 0.01
"""Seconds between two commits of one destination's state. Under load there is always
something to commit; committing back to back cost the router ~10% of its time per event
(measured on bench_delivery: a commit is a round trip to the log's writer thread), while
waiting 10 ms after each only means a crash re-sends up to 10 ms more of delivered events
(at-least-once either way; Kafka Connect commits source offsets once a minute by default).
``stop`` still saves everything at once."""
Counter = Literal["delivered", "retried", "dead_lettered", "filtered", "redriven", "task_failures"]
CountHook = Callable[[Counter, int], None]
_log = logging.getLogger("headwater.router")


class DeliveryState:
    def __init__(
        self, log: AnyLog, destination: str, cursor: int, record: DestinationRecord
    ) -> None:
        self.log = log
        self.destination = destination
        self.watermark = Watermark(cursor)
        self.saved_cursor = cursor
        self.record = record
        self._ops: list[SideOp] = []
        self._unsaved: dict[tuple[bytes, bytes], bytes | None] = {}
        self._dirty = asyncio.Event()
        self._record_dirty = False
        self._landing: asyncio.Future[bool] | None = None
        """The commit last sent to the log (it runs on if its committer is cancelled)."""
        self.commits = 0
        self.on_count: CountHook | None = None
        """Told of every counter change (the daemon mirrors them into its metrics)."""

    @property
    def cursor(self) -> int:
        return self.watermark.low

    def stage(self, table: bytes, key: bytes, value: bytes | None) -> None:
        self._ops.append((table, key, value))
        self._unsaved[(table, key)] = value
        self._dirty.set()

    def get(self, table: bytes, key: bytes) -> bytes | None:
        """Read a side-table value as it will be once staged writes are committed."""
        try:
            return self._unsaved[(table, key)]
        except KeyError:
            return self.log.get_value(table, key)

    def saved(self, table: bytes, key: bytes) -> bool:
        """Whether nothing is staged for this key that is not committed yet."""
        return (table, key) not in self._unsaved

    def count(self, counter: Counter, n: int = 1) -> None:
        record = self.record
        if counter == "delivered":
            record.delivered += n
        elif counter == "retried":
            record.retried += n
        elif counter == "dead_lettered":
            record.dead_lettered += n
        elif counter == "filtered":
            record.filtered += n
        elif counter == "task_failures":
            record.task_failures += n
        else:
            record.redriven += n
        if self.on_count is not None:
            self.on_count(counter, n)

    def finish(self, seq: int) -> None:
        self.watermark.finish(seq)
        self._dirty.set()

    def finish_many(self, seqs: list[int]) -> None:
        self.watermark.finish_many(seqs)
        self._dirty.set()

    def touch(self) -> None:
        """The counters or state changed: write the record with the next commit."""
        self._record_dirty = True
        self._dirty.set()

    @property
    def pending_writes(self) -> bool:
        return bool(self._ops) or self._record_dirty or self.watermark.low != self.saved_cursor

    async def run(self) -> None:
        """Commit until cancelled, at most once per ``COMMIT_INTERVAL``."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.pending_writes:
                await self.commit()
                await asyncio.sleep(COMMIT_INTERVAL)

    async def commit(self) -> None:
        await self.landed()  # commits land one after the other, in order
        staged, self._ops = self._ops, []
        self._record_dirty = False
        low = self.watermark.low
        ops = [*staged, *self.position_ops(low)]
        self._landing = landing = asyncio.ensure_future(self._land(staged, ops, low))
        if not await asyncio.shield(landing):
            await asyncio.sleep(1.0)

    async def landed(self) -> None:
        """Wait until the commit last sent to the log has landed (or failed), also when
        the task that sent it was cancelled meanwhile."""
        landing = self._landing
        if landing is not None and not landing.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(landing)

    async def _land(self, staged: list[SideOp], ops: list[SideOp], low: int) -> bool:
        """Write one commit; False when it failed (all of it staged again)."""
        try:
            await self.log.append("", (), side_ops=ops)
        except LogClosedError:
            self._ops[:0] = staged
            raise
        except Exception as exc:
            # Keep everything staged (in order) for the next try; nothing moved on disk.
            self._ops[:0] = staged
            self._record_dirty = True
            self._dirty.set()
            _log.error(
                "destination %s: cannot save delivery state: %s; retrying in 1 s",
                self.destination,
                exc,
                extra={"fields": {"destination": self.destination}},
            )
            return False
        self.saved_cursor = low
        self.commits += 1
        unsaved = self._unsaved
        for table, key, value in staged:
            if (table, key) in unsaved and unsaved[(table, key)] is value:
                del unsaved[(table, key)]
        return True

    def position_ops(self, low: int) -> list[SideOp]:
        """The cursor and record writes that go with every commit. A replay job overrides
        this to keep its own cursor and job record (headwater.replay), while its dead
        letters stay the destination's."""
        ops: list[SideOp] = []
        if low != self.saved_cursor:
            ops.append((CURSORS, cursor_key(self.destination), seq_key(low)))
        ops += self.record_ops()
        return ops

    def record_ops(self) -> list[SideOp]:
        return [(DESTINATIONS, stats_key(self.destination), encode(self.record))]

    async def save_record(self) -> None:
        """Write the record alone, nothing staged and not the cursor (after a failed task,
        when what is in memory is not to be trusted)."""
        await self.landed()
        self._record_dirty = False
        await self.log.append("", (), side_ops=self.record_ops())

    async def flush(self) -> None:
        """Commit what is staged now (used at stop)."""
        if self.pending_writes:
            await self.commit()

    def claim(self) -> None:
        """Record this process as the owner (`headwater destinations` checks it is alive)."""
        self.record.pid = os.getpid()
        self.touch()

    def dead_letter(
        self,
        seq: int,
        source: str,
        received_at: int,
        event: dict[str, Any],
        *,
        reason: str,
        attempts: int,
        first: int,
        last: int,
    ) -> None:
        """Stage a dead letter and count it; the caller finishes or unparks the event."""
        letter = DeadLetter(
            destination=self.destination,
            seq=seq,
            reason=reason,
            attempts=attempts,
            first_attempt_at=first,
            last_attempt_at=last,
            source=source,
            received_at=received_at,
            event=event,
        )
        self.stage(DEAD_LETTERS, event_key(self.destination, seq), encode(letter))
        self.count("dead_lettered")
        self.record.last_error, self.record.last_error_at = reason, last
        _log.warning(
            "destination %s: event seq %d dead-lettered after %d attempt(s): %s",
            self.destination,
            seq,
            attempts,
            reason,
            extra={"fields": {"destination": self.destination, "seq": seq}},
        )
