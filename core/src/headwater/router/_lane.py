"""A delivery lane: one batch in flight at a time, for the users hashed to it.

Users are spread over a destination's lanes by a stable hash of their key (userId, else
anonymousId), so one user's events always go through the same lane, in log order, while
different lanes send in parallel. Each lane sends the due parked events of its users and
its live events, applies the per-event outcomes, and parks a user's later events behind a
failed one, so a failing user holds back only that user.

A batch refused as a whole (every event ``Rejected`` for the same reason, as a webhook's
400 is) is split in halves and re-sent until the events at fault are alone, so one bad
event does not dead-letter the good ones it was batched with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import msgspec

from headwater_spec import (
    DELIVERED,
    Delivered,
    Event,
    EventError,
    Outcome,
    Rejected,
    Retry,
    event_from_dict,
)

from ..log import now_us
from ._batcher import Batcher, BatchLimits, estimate_json_size
from ._decode import StoredEvent, decode_model, event_dict, model_of
from ._health import Health
from ._parked import Parked, ParkedQueues
from ._ratelimit import RateLimiter
from ._records import RETRIES, PendingRecord, encode, event_key
from ._retry import RetryPolicy
from ._state import DeliveryState

_log = logging.getLogger("headwater.router")

Send = Callable[[list[Event]], Awaitable[list[Outcome]]]
LoadPending = Callable[[int], PendingRecord | None]


def lane_index(user: str, lanes: int) -> int:
    """Stable across processes (``hash()`` of a str is salted per process)."""
    return zlib.crc32(user.encode("utf-8", "surrogatepass")) % lanes if lanes > 1 else 0


def park_record(lanes: Sequence[Lane], pending: PendingRecord, size: int) -> None:
    """Park a retry read from the table (``size``: its encoded bytes) in its user's lane."""
    lane = lanes[lane_index(pending.user, len(lanes))]
    lane.parked.park(
        Parked(
            seq=pending.seq,
            user=pending.user,
            size=estimate_json_size(size),
            received_at=pending.received_at,
            attempts=pending.attempts,
            first_attempt_at=pending.first_attempt_at,
            next_at=pending.next_at,
        )
    )
    lane.poke()


class Item(msgspec.Struct, gc=False):
    """A live event read from the log, on its way through a lane. Not tracked by the
    cyclic GC (it never holds a cycle): thousands are alive at once under load. ``event``
    is the stored record as read (msgpack bytes) until something needs the event as a dict,
    or the event as a dict when the reader had to decode it so; ``model`` is decoded by the
    lane right before the event is sent (None until then)."""

    seq: int
    user: str
    source: str
    received_at: int
    event: StoredEvent
    model: Event | None
    size: int


class _Sent(msgspec.Struct, gc=False):
    """A parked event loaded for sending."""

    entry: Parked
    record: PendingRecord
    model: Event


class Lane:
    def __init__(
        self,
        index: int,
        destination: str,
        *,
        send: Send,
        state: DeliveryState,
        limiter: RateLimiter,
        health: Health,
        policy: RetryPolicy,
        limits: BatchLimits,
        load_pending: LoadPending,
        latency: Callable[[float], None],
        send_timeout: float,
        on_progress: Callable[[], None],
    ) -> None:
        self.index = index
        self.destination = destination
        self._send = send
        self.state = state
        self.limiter = limiter
        self.health = health
        self.policy = policy
        self.limits = limits
        self.load_pending = load_pending
        self.latency = latency
        self.send_timeout = send_timeout
        self.on_progress = on_progress
        self.batcher: Batcher[Item] = Batcher(limits)
        self.parked = ParkedQueues()
        self._wake = asyncio.Event()
        self.in_flight = 0
        self.closing = False
        """Set by a stop that lets the batch in flight finish: the lane sends no other one
        (``run`` returns after the current step)."""

    # -- feeding -----------------------------------------------------------------------

    def put(self, item: Item) -> None:
        self.batcher.put(item)
        self._wake.set()

    def put_many(self, items: list[Item]) -> None:
        self.batcher.put_many(items)
        self._wake.set()

    def poke(self) -> None:
        """Parked entries changed (redrive, recovery): look again."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        while not self.closing:
            await self._wait_for_work()
            await self.limiter.wait_hold()
            await self.batcher.linger()
            if self.closing:
                return
            await self.step()

    async def _wait_for_work(self) -> None:
        while True:
            if len(self.batcher):
                return
            due = self.parked.next_due()
            now = now_us()
            if due is not None and due <= now:
                return
            self._wake.clear()
            timeout = None if due is None else (due - now) / 1e6
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def step(self) -> None:
        """Form one batch, send it, apply the outcomes."""
        limits = self.limits
        entries = self.parked.take_due(now_us(), limits.max_count, limits.max_bytes)
        sent: list[_Sent] = []
        dropped_users: set[str] = set()
        for entry in entries:
            loaded = self._load(entry)
            if loaded is not None:
                sent.append(loaded)
            else:
                dropped_users.add(entry.user)
        per_user = Counter(s.entry.user for s in sent)
        whole = {u for u, n in per_user.items() if self.parked.fully_taken(u, n)}
        room = limits.max_count - len(sent)
        live: list[Item] = []
        if room > 0 and len(self.batcher) and not self.parked.users():
            taken = self.batcher.take(room, limits.max_bytes - sum(s.entry.size for s in sent))
            live = self._decoded(taken)
        elif room > 0 and len(self.batcher):
            budget = limits.max_bytes - sum(s.entry.size for s in sent)
            parked = self.parked

            def sendable(item: Item) -> bool:
                return not parked.blocked(item.user) or item.user in whole

            for item in self._decoded(self.batcher.take(room, budget, sendable)):
                if sendable(item):
                    live.append(item)
                else:
                    self._park_behind(item)
        if sent or live:
            models = [s.model for s in sent] + cast(list[Event], [i.model for i in live])
            self.in_flight = len(models)
            try:
                outcomes = await self._send_isolating(models)
            finally:
                self.in_flight = 0
            self._apply(sent, live, outcomes)
            self.health.observe(outcomes)
            held = self.limiter.held_for
            record = self.state.record
            record.state = "backing_off" if held else "running"
            record.backoff_until = now_us() + int(held * 1e6) if held else 0
        self.parked.settle({s.entry.user for s in sent} | dropped_users)
        self.state.touch()
        self.on_progress()

    def _decoded(self, items: list[Item]) -> list[Item]:
        """The items with their models. One that does not match the model is dead-lettered
        and finished here, exactly as the reader does with one it cannot route."""
        out: list[Item] = []
        decode = decode_model
        for item in items:
            if item.model is None:
                try:  # the record of an event the reader routed: no unknown keys
                    item.model = decode(item.event).event  # type: ignore[arg-type]
                except (msgspec.ValidationError, TypeError):  # the general way, for the reason
                    try:
                        item.model = model_of(item.event)
                    except EventError as exc:
                        now = now_us()
                        self.state.dead_letter(
                            item.seq,
                            item.source,
                            item.received_at,
                            event_dict(item.event),
                            reason=f"stored event does not match the event model: {exc}",
                            attempts=0,
                            first=now,
                            last=now,
                        )
                        self.state.finish(item.seq)
                        continue
            out.append(item)
        return out

    def _load(self, entry: Parked) -> _Sent | None:
        record = self.load_pending(entry.seq)
        if record is None:  # purged from the table behind our back
            self.parked.remove(entry)
            return None
        try:
            model = event_from_dict(record.event)
        except EventError as exc:
            self._dead_letter_parked(entry, record, f"stored event is invalid: {exc}", now_us())
            return None
        return _Sent(entry, record, model)

    # -- sending -----------------------------------------------------------------------

    async def _send_once(self, events: list[Event]) -> list[Outcome]:
        await self.limiter.acquire()
        started = time.perf_counter()
        try:
            outcomes = await asyncio.wait_for(self._send(events), self.send_timeout)
        except TimeoutError:
            outcomes = [Retry(reason=f"send did not finish within {self.send_timeout:g} s")] * len(
                events
            )
        except Exception as exc:  # a connector bug must not lose events
            reason = f"connector raised {type(exc).__name__}: {exc}"
            _log.warning(
                "destination %s: %s",
                self.destination,
                reason,
                extra={"fields": {"destination": self.destination}},
            )
            outcomes = [Retry(reason=reason)] * len(events)
        self.latency(time.perf_counter() - started)
        if len(outcomes) != len(events):
            reason = f"connector returned {len(outcomes)} outcomes for {len(events)} events"
            outcomes = [Retry(reason=reason)] * len(events)
        return list(outcomes)

    async def _send_isolating(self, events: list[Event]) -> list[Outcome]:
        outcomes = await self._send_once(events)
        if len(events) > 1 and _rejected_as_a_whole(outcomes):
            mid = len(events) // 2
            first = await self._send_isolating(events[:mid])
            return first + await self._send_isolating(events[mid:])
        return outcomes

    # -- outcomes ----------------------------------------------------------------------

    def _apply(self, sent: list[_Sent], live: list[Item], outcomes: Sequence[Outcome]) -> None:
        now = now_us()
        delivered = 0
        for loaded, outcome in zip(sent, outcomes[: len(sent)], strict=True):
            entry, pending = loaded.entry, loaded.record
            if isinstance(outcome, Delivered):
                self.state.stage(RETRIES, event_key(self.destination, entry.seq), None)
                self.parked.remove(entry)
                self.parked.release(entry.user, now)
                delivered += 1
                continue
            attempts = entry.attempts + 1
            first = entry.first_attempt_at or now
            if isinstance(outcome, Retry) and not self.policy.exhausted(attempts, first, now):
                entry.attempts, entry.first_attempt_at = attempts, first
                entry.next_at = now + int(self.policy.delay(attempts, outcome.retry_after) * 1e6)
                pending.attempts, pending.first_attempt_at = attempts, first
                pending.last_attempt_at, pending.next_at = now, entry.next_at
                pending.reason = outcome.reason
                self.state.stage(RETRIES, event_key(self.destination, entry.seq), encode(pending))
                self._note_retry(outcome.reason, now)
                continue
            entry.attempts, entry.first_attempt_at = attempts, first
            self._dead_letter_parked(entry, pending, _final_reason(outcome, attempts), now)
        live_outcomes = outcomes[len(sent) :]
        if live and live_outcomes.count(DELIVERED) == len(live):  # the usual case, no loop
            delivered += len(live)
            self.state.finish_many([item.seq for item in live])
            live, live_outcomes = [], []
        for item, outcome in zip(live, live_outcomes, strict=True):
            if isinstance(outcome, Delivered):
                delivered += 1
            elif isinstance(outcome, Retry) and not self.policy.exhausted(1, now, now):
                next_at = now + int(self.policy.delay(1, outcome.retry_after) * 1e6)
                self._park(item, attempts=1, first=now, next_at=next_at, reason=outcome.reason)
                self._note_retry(outcome.reason, now)
            else:
                self.state.dead_letter(
                    item.seq,
                    item.source,
                    item.received_at,
                    event_dict(item.event),
                    reason=_final_reason(outcome, 1),
                    attempts=1,
                    first=now,
                    last=now,
                )
            self.state.finish(item.seq)
        if delivered:
            self.state.count("delivered", delivered)
            self.state.record.last_delivery_at = now

    def _note_retry(self, reason: str, now: int) -> None:
        self.state.count("retried")
        self.state.record.last_error, self.state.record.last_error_at = reason, now

    def _park_behind(self, item: Item) -> None:
        """The user has earlier events parked: this one waits behind them, unsent."""
        self._park(item, attempts=0, first=0, next_at=0, reason="")
        self.state.finish(item.seq)

    def _park(self, item: Item, *, attempts: int, first: int, next_at: int, reason: str) -> None:
        pending = PendingRecord(
            seq=item.seq,
            user=item.user,
            source=item.source,
            received_at=item.received_at,
            event=event_dict(item.event),
            attempts=attempts,
            first_attempt_at=first,
            last_attempt_at=first,
            next_at=next_at,
            reason=reason,
        )
        self.state.stage(RETRIES, event_key(self.destination, item.seq), encode(pending))
        self.parked.park(
            Parked(
                seq=item.seq,
                user=item.user,
                size=item.size,
                received_at=item.received_at,
                attempts=attempts,
                first_attempt_at=first,
                next_at=next_at,
            )
        )

    def _dead_letter_parked(
        self, entry: Parked, pending: PendingRecord, reason: str, now: int
    ) -> None:
        self.state.stage(RETRIES, event_key(self.destination, entry.seq), None)
        self.parked.remove(entry)
        self.state.dead_letter(
            pending.seq,
            pending.source,
            pending.received_at,
            pending.event,
            reason=reason,
            attempts=entry.attempts,
            first=entry.first_attempt_at or now,
            last=now,
        )


def _rejected_as_a_whole(outcomes: Sequence[Outcome]) -> bool:
    first = outcomes[0]
    return isinstance(first, Rejected) and all(o == first for o in outcomes)


def _final_reason(outcome: Outcome, attempts: int) -> str:
    if isinstance(outcome, Retry):
        return f"gave up after {attempts} attempt(s): {outcome.reason}"
    if isinstance(outcome, Rejected):
        return outcome.reason
    return "delivered"
