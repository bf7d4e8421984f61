"""Events waiting in the retry table, grouped per user, in memory.

Only the metadata is kept here (seq, user, attempts, when next); the event itself stays in
the ``retries`` table and is read when it is sent, so a long outage costs disk, not memory.
A user with anything parked is *blocked*: the lane parks that user's later events behind
the head instead of sending them, which keeps the user's order while other users go on.
The head of each user's queue is sent when its ``next_at`` has come, together with the
following entries that are due as well (those parked behind it were never attempted).
"""

from __future__ import annotations

import heapq
from collections import deque

import msgspec


class Parked(msgspec.Struct, kw_only=True, gc=False):
    seq: int
    user: str
    size: int
    received_at: int = 0
    attempts: int = 0
    first_attempt_at: int = 0
    next_at: int = 0


class ParkedQueues:
    """The parked events of one lane's users."""

    def __init__(self) -> None:
        self._users: dict[str, deque[Parked]] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._busy: set[str] = set()
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def blocked(self, user: str) -> bool:
        return user in self._users

    def users(self) -> int:
        return len(self._users)

    def park(self, entry: Parked) -> None:
        """Add an entry; its queue stays ordered by seq (a redriven dead letter may be
        older than what is already parked)."""
        queue = self._users.get(entry.user)
        if queue is None:
            self._users[entry.user] = deque([entry])
            self._schedule(entry)
        elif queue[-1].seq < entry.seq:
            queue.append(entry)
        else:
            items = sorted([*queue, entry], key=lambda p: p.seq)
            queue.clear()
            queue.extend(items)
            self._schedule(queue[0])
        self.count += 1

    def _schedule(self, head: Parked) -> None:
        heapq.heappush(self._heap, (head.next_at, head.seq, head.user))

    def next_due(self) -> int | None:
        """The earliest ``next_at`` of a head that is not in flight (microseconds)."""
        heap = self._heap
        while heap:
            next_at, seq, user = heap[0]
            if self._valid(next_at, seq, user):
                return next_at
            heapq.heappop(heap)
        return None

    def _valid(self, next_at: int, seq: int, user: str) -> bool:
        queue = self._users.get(user)
        if not queue or user in self._busy:
            return False
        head = queue[0]
        return head.seq == seq and head.next_at == next_at

    def take_due(self, now: int, max_count: int, max_bytes: int) -> list[Parked]:
        """Due runs (a head and the due entries right behind it), users in order of their
        due time, within the limits; their users are marked busy until ``settle``."""
        out: list[Parked] = []
        used = 0
        heap = self._heap
        while heap and len(out) < max_count:
            next_at, seq, user = heap[0]
            if not self._valid(next_at, seq, user):
                heapq.heappop(heap)
                continue
            if next_at > now:
                break
            heapq.heappop(heap)
            queue = self._users[user]
            before = len(out)
            for entry in queue:
                if entry.next_at > now or len(out) >= max_count:
                    break
                if out and used + entry.size > max_bytes:
                    break
                out.append(entry)
                used += entry.size
            if len(out) == before:  # no room left for this user's head
                self._schedule(queue[0])
                break
            self._busy.add(user)
            if used >= max_bytes:
                break
        return out

    def fully_taken(self, user: str, taken: int) -> bool:
        queue = self._users.get(user)
        return queue is not None and len(queue) == taken

    def remove(self, entry: Parked) -> None:
        """Drop a delivered or dead-lettered entry."""
        queue = self._users.get(entry.user)
        if not queue:
            return
        if queue[0] is entry:
            queue.popleft()
        else:
            try:
                queue.remove(entry)
            except ValueError:
                return
        self.count -= 1
        if not queue:
            del self._users[entry.user]

    def settle(self, users: set[str]) -> None:
        """The lane has applied the outcomes for these users: schedule their new heads."""
        for user in users:
            self._busy.discard(user)
            queue = self._users.get(user)
            if queue:
                self._schedule(queue[0])

    def oldest_received(self) -> int | None:
        """When the oldest parked event was received (each user's head is its oldest)."""
        return min((queue[0].received_at for queue in self._users.values()), default=None)

    def release(self, user: str, now: int) -> None:
        """One of the user's events just went through: the rest need not wait out the
        backoff they got when they failed beside it."""
        for entry in self._users.get(user, ()):
            if entry.next_at > now:
                entry.next_at = now

    def make_due(self, now: int) -> None:
        """The destination recovered from an outage: every parked event may go now (each
        user's still in order, head first)."""
        for user, queue in self._users.items():
            for entry in queue:
                if entry.next_at > now:
                    entry.next_at = now
            if user not in self._busy:
                self._schedule(queue[0])

    def probe(self, now: int) -> bool:
        """Make the head due soonest go now (after a restart); True when there was one."""
        due = self.next_due()
        if due is None:
            return False
        user = self._heap[0][2]
        head = self._users[user][0]
        if head.next_at > now:
            head.next_at = now
            self._schedule(head)
        return True
