"""The gate every request to one destination passes: a token bucket for the configured
requests per second, and a hold that stops all of the destination's lanes at once.

The hold is how a destination-wide failure is respected: a 429 with ``Retry-After`` (or a
batch that failed as a whole) stops every lane until that time, so no request reaches the
service before it said it is ready again. Nothing here is shared between destinations.
"""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """``rate`` requests per second with a burst of ``max(1, rate)``; None means unlimited."""

    def __init__(self, rate: float | None = None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate_limit must be greater than 0 requests per second")
        self.rate = rate
        self.burst = max(1.0, rate) if rate else 0.0
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._hold_until = 0.0

    @property
    def held_for(self) -> float:
        """Seconds until the hold ends (0 when there is none)."""
        return max(0.0, self._hold_until - time.monotonic())

    def hold_until(self, deadline: float) -> None:
        """Let no request through before ``deadline`` (time.monotonic). Only ever extends."""
        if deadline > self._hold_until:
            self._hold_until = deadline

    async def wait_hold(self) -> None:
        """Return once no hold is in force."""
        while (wait := self.held_for) > 0:
            await asyncio.sleep(wait)

    async def acquire(self) -> None:
        """Wait for the hold, then for a token."""
        while True:
            await self.wait_hold()
            if self.rate is None:
                return
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self._tokens) / self.rate)
