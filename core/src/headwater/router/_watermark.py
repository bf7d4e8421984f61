"""The low watermark: the cursor of a destination whose events finish out of order.

Lanes deliver different users in parallel, so seq 120 may finish before seq 100. The cursor
stored in the log is the lowest seq not yet finished; seqs finished above it are remembered
here until the gap below them closes. "Finished" means delivered, filtered out,
dead-lettered, or parked in the retry table (which then owns the event). A restart resumes
at the stored cursor and so re-sends at most the events that were in flight: delivery is
at-least-once, and destinations that de-duplicate on messageId see each event once.
"""

from __future__ import annotations


class Watermark:
    """Tracks finished seqs at or above ``low``."""

    __slots__ = ("_done", "low")

    def __init__(self, low: int) -> None:
        self.low = low
        self._done: set[int] = set()

    def finish(self, seq: int) -> None:
        if seq < self.low:
            return
        if seq != self.low:
            self._done.add(seq)
            return
        low = seq + 1
        done = self._done
        while low in done:
            done.discard(low)
            low += 1
        self.low = low

    def finish_many(self, seqs: list[int]) -> None:
        """``finish`` for each of ``seqs`` (a delivered batch), without a call per seq."""
        low = self.low
        if not seqs or min(seqs) < low:  # some finished before: the careful way
            for seq in seqs:
                self.finish(seq)
            return
        done = self._done
        done.update(seqs)
        while low in done:
            done.discard(low)
            low += 1
        self.low = low

    @property
    def ahead(self) -> int:
        """Seqs finished above the gap (what a restart would re-send beside the in-flight)."""
        return len(self._done)
