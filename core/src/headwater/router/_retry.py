"""When to try an event again, and when to give up.

Backoff is exponential with full jitter (AWS architecture blog, "Exponential Backoff and
Jitter"): the n-th retry waits a uniform random time in ``[0, min(cap, base * 2**(n-1))]``,
so clients that failed together do not come back together. A ``Retry-After`` the service
sent replaces the computed delay. An event is given up (dead-lettered) once it has been
attempted ``max_attempts`` times or its first attempt is older than ``max_age``; the age is
counted from the first attempt, not from when the event was received, so a replay of old
history gets the same retry window as live traffic.

Defaults: 1 s base, 10 min cap, 50 attempts, 24 h: about four hours of retries before a
dead letter during a full outage, in line with what Segment documents for its destinations.
``max_age`` is written as a duration in the config (``headwater.config.parse_duration``).
"""

from __future__ import annotations

import random

import msgspec

DEFAULT_BASE = 1.0
DEFAULT_CAP = 600.0
DEFAULT_MAX_ATTEMPTS = 50
DEFAULT_MAX_AGE = 24 * 3600.0


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Backoff and limits for one destination (seconds)."""

    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age: float = DEFAULT_MAX_AGE

    def delay(
        self, attempts: int, retry_after: float | None = None, *, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before the next attempt, after ``attempts`` failed ones."""
        if retry_after is not None and retry_after >= 0:
            return retry_after
        ceiling = min(self.cap, self.base * 2.0 ** max(attempts - 1, 0))
        return (rng or random).uniform(0.0, ceiling)

    def exhausted(self, attempts: int, first_attempt_us: int, now_us: int) -> bool:
        """True when an event with this history must not be tried again."""
        if attempts >= self.max_attempts:
            return True
        return (now_us - first_attempt_us) / 1e6 >= self.max_age
