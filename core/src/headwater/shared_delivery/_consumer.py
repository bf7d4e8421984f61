"""The durable pull consumer of one partition of one destination, and pulling from it.

The consumer (``hw-<destination>-p<n>``, filter ``<stream>.p.<n>``, ack policy *all*) is
the delivery cursor: its ack floor is the last event of the partition the destination has
finished with. It lives in the cluster, replicated like the stream, so no daemon holds it.

Whoever acquires a partition's lease recreates its consumer at the ack floor + 1 before
pulling. That drops what the previous owner had pulled but not acknowledged (a daemon
killed mid-send) back into delivery at once and in order; letting JetStream redeliver
it after ``ack_wait`` would put it behind newer events and break per-user order. The
point it recreates it from is saved in the state bucket first (``restart_point``), so a
consumer deleted and not added again (the add failing during a NATS failover) resumes
there instead of at the destination's ``start``.

``Puller`` runs on the log's NATS loop: one inbox, at most one pull request in flight
(prefetching the next batch while the current one is sent), deliveries buffered in order.
A delivery older than one already received is a redelivery of something this owner holds
or has handled, and is dropped.

A pull's messages reach the client at most once: a NATS node that fails (or a connection
that moves) mid-pull can lose some the server already counted as sent. With ack policy
*all*, acknowledging a later message would then acknowledge those lost ones too, and they
would never be delivered. So the puller checks the consumer sequence of each delivery
(one more per message sent) and, at a jump, fails the pull (``DeliveryGap``) without
taking anything past it: the worker restarts the partition from its ack floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import zlib
from typing import TYPE_CHECKING, NamedTuple

from ..log._jetstream_read import ack_metadata, missed
from ..router._records import DESTINATIONS

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.client import JetStreamContext

    from ..log import JetStreamLog

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
RESTART_KEY = b"jetstream-restart\x00"
"""Per destination and partition: where its consumer was last (re)created from."""


class DeliveryGap(Exception):
    """Messages the consumer sent never arrived; the partition restarts from its ack floor."""


class Delivery(NamedTuple):
    seq: int
    data: bytes
    reply: str


def consumer_name(destination: str, partition: int) -> str:
    safe = _UNSAFE.sub("_", destination)
    if safe != destination:  # keep distinct ids distinct after replacing characters
        safe = f"{safe}-{zlib.crc32(destination.encode()):08x}"
    return f"hw-{safe}-p{partition}"


async def consumer_start(js: JetStreamContext, stream: str, name: str) -> int | None:
    """The sequence right after the consumer's ack floor (never before its own start);
    None when there is no such consumer."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        return None
    floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    return max(floor + 1, int(info.config.opt_start_seq or 1))


async def create_consumer(
    js: JetStreamContext,
    stream: str,
    name: str,
    subject: str,
    start: int,
    *,
    ack_wait: float,
    max_ack_pending: int,
) -> None:
    """Create the consumer afresh (deleting the old one) to deliver from ``start``."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(stream, name)
    await js.add_consumer(
        stream,
        api.ConsumerConfig(
            durable_name=name,
            filter_subject=subject,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=api.AckPolicy.ALL,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=max_ack_pending,
            max_waiting=16,
        ),
    )


def restart_key(destination: str, partition: int) -> bytes:
    return RESTART_KEY + destination.encode() + b"\x00%d" % partition


async def restart_point(log: JetStreamLog, destination: str, partition: int, start_seq: int) -> int:
    """Where the partition's consumer is to be created again, saved before the old one is
    deleted. Deleting and adding it are two requests: when the delete lands and the add
    does not (a NATS node failing, a kill -9 in between), the consumer is gone and only
    the saved point says where delivery was. Without it the partition would start over at
    the destination's ``start``, sending its whole history again."""
    key = restart_key(destination, partition)
    raw = await asyncio.to_thread(log.get_value, DESTINATIONS, key)
    saved = int.from_bytes(raw, "big") if raw else 0
    name = consumer_name(destination, partition)

    async def read(nc: Client, js: JetStreamContext) -> int | None:
        return await consumer_start(js, log.stream, name)

    start = await log.nats_call(read) or max(start_seq, saved, 1)
    if start != saved:
        await log.awrite_batch([(DESTINATIONS, key, start.to_bytes(8, "big"))])
    return start


async def consumer_lag(js: JetStreamContext, stream: str, name: str) -> int:
    """Events of the partition not yet acknowledged (0 when the consumer is missing)."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        return 0
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


class Puller:
    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._stream = stream
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._sub: Subscription | None = None
        self._buffer: list[Delivery] = []
        self._arrived = asyncio.Event()
        self._outstanding = False
        self._remaining = 0
        self._request_deadline = 0.0
        self._last_seq = 0
        self._delivered = 0
        """The consumer sequence of the last delivery received (the consumer is new)."""
        self._gap: str | None = None

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(
            self._nc.new_inbox(), cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def _on_msg(self, msg: Msg) -> None:
        if not msg.reply:  # status: 404/408 the request ended, 409 limits
            self._outstanding = False
            return
        if self._gap is not None:
            return
        meta = ack_metadata(msg.reply)
        if meta.consumer_seq != self._delivered + 1:
            self._gap = missed(self._stream, self._delivered, meta.consumer_seq)
            self._arrived.set()
            return
        self._delivered, seq = meta.consumer_seq, meta.stream_seq
        self._remaining -= 1
        if self._remaining <= 0:
            self._outstanding = False
        if seq <= self._last_seq:
            return
        self._last_seq = seq
        self._buffer.append(Delivery(seq, msg.data, msg.reply))
        self._arrived.set()

    async def _request(self, batch: int, wait: float) -> None:
        if self._sub is None:
            return
        now = time.monotonic()
        if self._outstanding and now < self._request_deadline:
            return
        self._outstanding = True
        self._remaining = batch
        self._request_deadline = now + wait + 1.0
        await self._nc.publish(
            self._next_subject,
            b'{"batch":%d,"expires":%d}' % (batch, int(wait * 1e9)),
            reply=self._sub.subject,
        )

    async def pull(self, batch: int, wait: float, linger: float) -> list[Delivery]:
        """Up to ``batch`` deliveries in stream order; [] when none came within ``wait``.
        Raises ``DeliveryGap`` once a delivery went missing."""
        if self._gap is not None:
            raise DeliveryGap(self._gap)
        await self._request(batch, wait)
        if not self._buffer:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)
            if self._gap is not None:
                raise DeliveryGap(self._gap)
            if not self._buffer:
                return []
            if linger > 0 and len(self._buffer) < batch:
                await asyncio.sleep(linger)
        if self._gap is not None:
            raise DeliveryGap(self._gap)
        out = self._buffer[:batch]
        del self._buffer[:batch]
        if not self._buffer:
            self._arrived.clear()
        return out

    async def ack(self, delivery: Delivery, timeout: float = 5.0) -> None:
        """Acknowledge ``delivery`` and every earlier one (ack policy all), and wait until
        the server confirms it."""
        await self._nc.request(delivery.reply, b"+ACK", timeout=timeout)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
