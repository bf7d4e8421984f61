"""A lane's queue of live events and the rule for when a batch is ready.

A batch is ready when it would reach the count or byte limit, or when its oldest event has
waited ``linger`` seconds, whichever comes first (Vector's and Kafka's linger). Under load
batches fill at once; when traffic is light an event waits at most ``linger``.

Sizes are estimates of the event's JSON: the stored msgpack size plus a quarter (JSON
spends quotes, colons and commas where msgpack spends one length byte), so a batch stays
under the connector's ``max_batch_bytes`` without encoding every event twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import msgspec


class BatchLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_count: int = 100
    max_bytes: int = 512 * 1024
    linger: float = 0.02


def estimate_json_size(msgpack_size: int) -> int:
    return msgpack_size + msgpack_size // 4 + 2


class Sized(Protocol):
    @property
    def size(self) -> int: ...


T = TypeVar("T", bound=Sized)


class Batcher(Generic[T]):
    """FIFO of items with their arrival time; one consumer (the lane) takes batches.
    Arrival times are kept per put (the items of one read arrive together), not per
    item: the linger only needs the oldest item's."""

    def __init__(self, limits: BatchLimits) -> None:
        self.limits = limits
        self._items: deque[T] = deque()
        self._arrivals: deque[tuple[float, int]] = deque()
        """(time, how many items arrived then), oldest first."""
        self._bytes = 0
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self._items.append(item)
        self._arrivals.append((time.monotonic(), 1))
        self._bytes += item.size
        self._arrived.set()

    def put_many(self, items: list[T]) -> None:
        """``put`` for the items of one read, which arrive together."""
        if not items:
            return
        self._items.extend(items)
        self._arrivals.append((time.monotonic(), len(items)))
        self._bytes += sum([item.size for item in items])
        self._arrived.set()

    def full(self, reserved_count: int = 0, reserved_bytes: int = 0) -> bool:
        limits = self.limits
        return (
            len(self._items) + reserved_count >= limits.max_count
            or self._bytes + reserved_bytes >= limits.max_bytes
        )

    async def linger(self, reserved_count: int = 0, reserved_bytes: int = 0) -> None:
        """Wait until a batch would be full or the oldest item has lingered long enough."""
        if not self._items:
            return
        deadline = self._arrivals[0][0] + self.limits.linger
        while not self.full(reserved_count, reserved_bytes):
            wait = deadline - time.monotonic()
            if wait <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                return

    def take(self, count: int, nbytes: int, keep: Callable[[T], bool] | None = None) -> list[T]:
        """Pop items from the front while they fit in ``count`` items and ``nbytes`` bytes
        (always at least one). Items for which ``keep`` is False are popped and returned
        too but do not count against the limits (the lane parks them instead of sending)."""
        out: list[T] = []
        sent = 0
        used = 0
        items = self._items
        if keep is None:  # the usual case: the same loop with less to decide per item
            while items:
                item = items[0]
                size = item.size
                if sent and (sent >= count or used + size > nbytes):
                    break
                items.popleft()
                out.append(item)
                sent += 1
                used += size
            self._bytes -= used
        else:
            while items:
                item = items[0]
                counts = keep(item)
                if counts and sent and (sent >= count or used + item.size > nbytes):
                    break
                items.popleft()
                self._bytes -= item.size
                out.append(item)
                if counts:
                    sent += 1
                    used += item.size
        self._taken(len(out))
        return out

    def _taken(self, n: int) -> None:
        arrivals = self._arrivals
        while n:
            at, count = arrivals[0]
            if count > n:
                arrivals[0] = (at, count - n)
                return
            arrivals.popleft()
            n -= count
