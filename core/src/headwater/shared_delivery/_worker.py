"""Delivering one partition of one destination, for as long as this daemon holds it.

Serial by design: pull a batch, send it, settle every event (delivered, dead-lettered or
retried until one of those), acknowledge, pull the next. One partition therefore never
has two batches in flight, which is what keeps each user's events in order; parallelism
comes from the partitions (and the daemons holding them). An event to retry holds up its
partition, as a Kafka consumer's failed record holds up its partition; other partitions go
on. Dead letters are written (durably, in the shared state bucket, where `headwater dlq`
finds them) before the batch is acknowledged.

The worker sends nothing and acknowledges nothing once its lease may have expired: the
next owner restarts at the ack floor, so at worst the unacknowledged batch is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import msgspec

from headwater_spec import Delivered, Event, EventError, Outcome, Rejected, Retry, event_from_dict

from ..log import LogRecord, now_us
from ..log._jetstream import with_seq
from ..router._records import DEAD_LETTERS, DeadLetter, encode, event_key
from ._consumer import Delivery, Puller, consumer_name, create_consumer, restart_point

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from ._service import DestinationRuntime

_log = logging.getLogger("headwater.shared_delivery")
_decode = msgspec.msgpack.Decoder(LogRecord).decode
PULL_WAIT = 1.0


class _Item:
    __slots__ = ("attempts", "event", "first_attempt", "model", "record")

    def __init__(self, record: LogRecord, model: Event) -> None:
        self.record = record
        self.model = model
        self.event = record.event
        self.attempts = 0
        self.first_attempt = 0


class PartitionWorker:
    def __init__(self, runtime: DestinationRuntime, partition: int, lease_deadline: float) -> None:
        self.runtime = runtime
        self.partition = partition
        self.consumer = consumer_name(runtime.id, partition)
        self.lease_deadline = lease_deadline
        """Monotonic time until which the lease is trusted; the service moves it on renewal."""
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.start_seq = 0

    def start(self) -> None:
        self.task = asyncio.create_task(
            self.run(), name=f"hw-shared-{self.runtime.id}-p{self.partition}"
        )

    def _lease_valid(self) -> bool:
        return time.monotonic() < self.lease_deadline

    def can_go_on(self) -> bool:
        return not self.stopping and self._lease_valid()

    async def run(self) -> None:
        """Deliver until stopped or the lease is lost. A NATS error (a node died, a
        consumer leader is being elected) restarts the partition from its ack floor after
        a pause, which re-sends at most the batch that was in flight."""
        while self.can_go_on():
            try:
                await self._deliver()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning(
                    "destination %s partition %d: %r; restarting from the last acknowledged",
                    self.runtime.id,
                    self.partition,
                    exc,
                    extra={"fields": {"destination": self.runtime.id}},
                )
                await self._sleep(1.0)

    async def _deliver(self) -> None:
        runtime = self.runtime
        log = runtime.log
        settings = runtime.settings

        start = await restart_point(log, runtime.id, self.partition, runtime.start_seq)

        async def reset(nc: Client, js: JetStreamContext) -> None:
            await create_consumer(
                js,
                log.stream,
                self.consumer,
                f"{log.stream}.p.{self.partition}",
                start,
                ack_wait=max(300.0, 2 * settings.send_timeout),
                max_ack_pending=max(10_000, 4 * settings.limits.max_count),
            )

        async def open_puller(nc: Client, js: JetStreamContext) -> Puller:
            made = Puller(nc, log.stream, self.consumer)
            await made.open()
            return made

        await log.nats_call(reset)
        self.start_seq = start
        puller = await log.nats_call(open_puller)
        try:
            batch, linger = settings.limits.max_count, settings.limits.linger
            while self.can_go_on():
                deliveries = await log.on_nats_loop(puller.pull(batch, PULL_WAIT, linger))
                if not deliveries:
                    continue
                if not await self._settle(deliveries) or not self._lease_valid():
                    return  # stopping or lease lost: leave the batch unacknowledged
                await log.on_nats_loop(puller.ack(deliveries[-1]))
                runtime.acked_seq[self.partition] = deliveries[-1].seq
        finally:
            with contextlib.suppress(Exception):  # the log may have closed first
                await log.on_nats_loop(puller.close())

    async def _settle(self, deliveries: list[Delivery]) -> bool:
        """Deliver the batch until every event is delivered or dead-lettered; False when
        the worker must stop first (the batch is then not acknowledged)."""
        runtime = self.runtime
        pending: list[_Item] = []
        letters: list[DeadLetter] = []
        for delivery in deliveries:
            record = _decode(with_seq(delivery.data, delivery.seq))
            if not runtime.filter.wants(record.source, record.event):
                runtime.count("filtered")
                continue
            try:
                model = event_from_dict(record.event)
            except EventError as exc:
                now = now_us()
                letters.append(
                    self._letter(record, f"stored event does not match the model: {exc}", 0, now)
                )
                continue
            pending.append(_Item(record, model))
        while pending:
            if not self.can_go_on():
                return False
            now = now_us()
            for item in pending:
                item.attempts += 1
                item.first_attempt = item.first_attempt or now
            await runtime.limiter.acquire()
            if not self.can_go_on():
                return False
            outcomes = await self._send([item.model for item in pending])
            now = now_us()
            retry: list[_Item] = []
            retry_after: float | None = None
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Delivered):
                    runtime.count("delivered")
                elif isinstance(outcome, Rejected):
                    letters.append(self._letter(item.record, outcome.reason, item.attempts, now))
                elif runtime.settings.policy.exhausted(item.attempts, item.first_attempt, now):
                    letters.append(
                        self._letter(
                            item.record,
                            f"gave up after {item.attempts} attempts: {outcome.reason}",
                            item.attempts,
                            now,
                            first=item.first_attempt,
                        )
                    )
                else:
                    retry.append(item)
                    if outcome.retry_after is not None:
                        retry_after = max(retry_after or 0.0, outcome.retry_after)
            if retry_after is not None and len(retry) == len(pending):
                # The service asked for a pause: no partition of this daemon sends before it.
                runtime.limiter.hold_until(time.monotonic() + retry_after)
            pending = retry
            if pending:
                runtime.count("retried", len(pending))
                attempts = max(item.attempts for item in pending)
                delay = runtime.settings.policy.delay(attempts, retry_after)
                if not await self._sleep(delay):
                    return False
        if letters:
            ops = [(DEAD_LETTERS, event_key(runtime.id, d.seq), encode(d)) for d in letters]
            await runtime.log.awrite_batch(ops)
            runtime.count("dead_lettered", len(letters))
        return True

    async def _send(self, events: list[Event]) -> list[Outcome]:
        runtime = self.runtime
        try:
            outcomes = await asyncio.wait_for(
                runtime.connector.send(events), runtime.settings.send_timeout
            )
        except Exception as exc:  # a connector must not raise; treat it as passing trouble
            return [Retry(f"send failed: {type(exc).__name__}: {exc}")] * len(events)
        if len(outcomes) != len(events):
            reason = f"the connector answered {len(outcomes)} outcomes for {len(events)} events"
            return [Retry(reason)] * len(events)
        return outcomes

    async def _sleep(self, seconds: float) -> bool:
        """Wait before a retry, in short steps so a stop or a lost lease ends it early."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.can_go_on():
                return False
            await asyncio.sleep(min(0.2, deadline - time.monotonic()))
        return self.can_go_on()

    def _letter(
        self, record: LogRecord, reason: str, attempts: int, now: int, *, first: int = 0
    ) -> DeadLetter:
        event: dict[str, Any] = record.event
        return DeadLetter(
            destination=self.runtime.id,
            seq=record.seq,
            reason=reason,
            attempts=attempts,
            first_attempt_at=first or now,
            last_attempt_at=now,
            source=record.source,
            received_at=record.received_at,
            event=event,
        )
