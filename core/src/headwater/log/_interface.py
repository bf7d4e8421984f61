"""The interface every log backend implements (LMDB now, a distributed log later)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ._records import AppendResult, LogRecord, LogStats, RejectedItem


class EventLog(Protocol):
    """An append-only, totally ordered log of events with named cursors and side tables."""

    async def append(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[tuple[bytes, bytes, bytes | None]] = (),
    ) -> AppendResult:
        """Append events (and rejected items, and side-table writes in the same commit);
        return after they are durable."""

    def append_sync(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[tuple[bytes, bytes, bytes | None]] = (),
    ) -> AppendResult:
        """The blocking form of ``append`` for tools without an event loop."""

    def scan(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[LogRecord]:
        """Records with ``start_seq <= seq <= end_seq`` in order."""

    def seq_at_time(self, received_at_us: int) -> int:
        """The first sequence received at or after the time; last_seq + 1 when none."""

    def last_seq(self) -> int:
        """The highest sequence stored (0 for an empty log)."""

    def get_cursor(self, name: str) -> int | None:
        """The sequence stored under a named cursor."""

    def set_cursor(self, name: str, seq: int) -> None:
        """Store a named cursor durably."""

    def stats(self) -> LogStats:
        """Counts, ranges and bytes on disk."""

    def close(self) -> None:
        """Flush and release the log."""
