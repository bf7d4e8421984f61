"""How busy the event loop is, so replays give way to live traffic.

Ingestion, live delivery and replays share one event loop (one core's worth of Python).
A replay has all its work ready at once and could take most of that loop, so it measures
how late the loop runs a short timer (its lag) and adapts its pace: it slows down
multiplicatively while the loop is late (ingest requests are waiting behind it) and speeds
up again when the loop is on time, like TCP's congestion control (AIMD) or a background
I/O class. Without live traffic the loop is on time and a replay runs at full speed;
under peak ingest it keeps a small floor rate, so it always finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

PERIOD = 0.005
"""Seconds between probes of the loop."""
SMOOTHING = 0.15
"""Weight of the newest probe in the running lag estimate."""


class LoopPressure:
    """The event loop's recent lag in seconds (0 when idle), measured by a timer task."""

    def __init__(self, period: float = PERIOD) -> None:
        self.period = period
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._users = 0

    def acquire(self) -> None:
        """A replay started: measure while any runs (nothing is measured otherwise)."""
        self._users += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe(), name="hw-lag")

    async def release(self) -> None:
        self._users = max(0, self._users - 1)
        if not self._users and self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.lag = 0.0

    async def _probe(self) -> None:
        """Lateness caused by work on this loop only: a timer is late either because
        callbacks ran (the loop's thread used the CPU meanwhile) or because the process
        was not scheduled (other processes used the cores); only the first is a reason to
        give way, so the lateness counts up to the CPU the loop's thread used beyond the
        period."""
        period = self.period
        while True:
            started, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(period)
            late = max(0.0, time.perf_counter() - started - period)
            busy = max(0.0, time.thread_time() - cpu - period)
            self.lag += SMOOTHING * (min(late, busy) - self.lag)
