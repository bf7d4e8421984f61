"""Destination-wide backoff: when a whole send fails, every lane of the destination waits.

A batch whose every event came back ``Retry`` says the service (not one event) is failing:
a 5xx, a timeout, a refused connection. Then all lanes hold for an exponential, jittered
delay that grows with each such failure in a row, instead of each lane hammering a dead
service (and parking its backlog in the retry table). A ``Retry-After`` holds them for
exactly that long. The first send that gets anything else back ends the outage: parked
heads are made due at once rather than sleeping out their own backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from headwater_spec import DELIVERED, Outcome, Retry

from ._ratelimit import RateLimiter
from ._retry import RetryPolicy


class Health:
    def __init__(
        self, policy: RetryPolicy, limiter: RateLimiter, on_recover: Callable[[], None]
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.on_recover = on_recover
        self.failures = 0

    def observe(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes or (not self.failures and outcomes.count(DELIVERED) == len(outcomes)):
            return  # nothing to change: the usual case, answered without a loop
        retry_after = max(
            (o.retry_after for o in outcomes if isinstance(o, Retry) and o.retry_after is not None),
            default=None,
        )
        whole = all(isinstance(o, Retry) for o in outcomes)
        if whole:
            self.failures += 1
            delay = self.policy.delay(self.failures, retry_after)
            self.limiter.hold_until(time.monotonic() + delay)
            return
        if retry_after is not None:
            self.limiter.hold_until(time.monotonic() + retry_after)
        if self.failures:
            self.failures = 0
            self.on_recover()

    @property
    def backing_off(self) -> bool:
        return self.limiter.held_for > 0
