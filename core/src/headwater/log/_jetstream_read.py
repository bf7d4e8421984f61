"""Reading a JetStream stream in order, in chunks, through a short-lived pull consumer.

A scan creates an ephemeral consumer (no acks, memory state, one replica) starting at a
sequence, then asks for up to a chunk of messages at a time with ``no_wait`` so an empty
stream never blocks. The consumer's own count of pending messages says when the scan has
reached the end that existed when it was read. The consumer deletes itself on the
server after ``inactive_threshold`` if a reader is abandoned without ``close``.

Messages reach the client at most once: when a NATS node fails or the connection moves
mid-read, some the server sent can be lost on the way. Each delivery carries the
consumer's delivery count, one more per message, so the reader checks it and fails the
read at a jump instead of going on past messages it never saw. Messages lost at the end
of a pull leave no jump behind them: when a pull ends on a status while messages are
still counted as pending, the reader asks the consumer how many it sent. Any other
status (503 when the node holding the read's consumer died) fails the read too.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, NamedTuple

from ._errors import LogError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.client import JetStreamContext

INACTIVE_THRESHOLD_S = 60.0
END_OF_CHUNK = ("404", "408")
"""Statuses that end a pull normally: no messages (now), the request expired."""
FETCH_ATTEMPTS = 3


class StreamMessage(NamedTuple):
    seq: int
    time_ns: int
    subject: str
    data: bytes
    headers: dict[str, str] | None


class AckInfo(NamedTuple):
    stream_seq: int
    consumer_seq: int
    """The consumer's count of deliveries: one more for each message it sends (a
    redelivery too), so a jump means messages were sent that never arrived."""
    time_ns: int
    pending: int


def ack_metadata(reply: str) -> AckInfo:
    """What a JetStream delivery's reply subject says of it:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``, or the form
    with domain and account hash (two more tokens after ``ACK``, one random at the end)."""
    tokens = reply.split(".")
    shift = 0 if len(tokens) == 9 else 2
    return AckInfo(
        int(tokens[5 + shift]),
        int(tokens[6 + shift]),
        int(tokens[7 + shift]),
        int(tokens[8 + shift]),
    )


def missed(stream: str, after: int, got: int) -> str:
    """Why a read stopped at a jump in the consumer sequence."""
    if got <= after:  # a consumer's new leader counting from an older state: nothing lost
        return (
            f"reading JetStream stream {stream!r}: delivery {got} arrived after {after}, out "
            "of sequence (the consumer's leader changed); read again from the last one received"
        )
    return (
        f"reading JetStream stream {stream!r}: delivery {got} arrived after {after}, so "
        f"{got - after - 1} message(s) sent by the server never arrived (a NATS node failed "
        "or the connection moved); read again from the last one received"
    )


class StreamReader:
    """An ordered read of one stream from ``start_seq`` (or the last message per subject)."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        stream: str,
        *,
        start_seq: int = 1,
        filter_subject: str | None = None,
        last_per_subject: bool = False,
        headers_only: bool = False,
    ) -> None:
        self._nc = nc
        self._js = js
        self.stream = stream
        self._start_seq = max(start_seq, 1)
        self._filter = filter_subject
        self._last_per_subject = last_per_subject
        self._headers_only = headers_only
        self._consumer = ""
        self._sub: Subscription | None = None
        self._chunk: list[StreamMessage] = []
        self._want = 0
        self._done: asyncio.Future[None] | None = None
        self._cut = False
        self._delivered = 0
        """The consumer sequence of the last message received."""
        self.pending = 0

    async def open(self) -> int:
        """Create the consumer; return how many messages it has to deliver."""
        from nats.js import api
        from nats.js.errors import Error as JsError

        if self._last_per_subject:
            policy = api.DeliverPolicy.LAST_PER_SUBJECT
            start: int | None = None
        else:
            policy, start = api.DeliverPolicy.BY_START_SEQUENCE, self._start_seq
        config = api.ConsumerConfig(
            deliver_policy=policy,
            opt_start_seq=start,
            ack_policy=api.AckPolicy.NONE,
            filter_subject=self._filter,
            inactive_threshold=INACTIVE_THRESHOLD_S,
            mem_storage=True,
            num_replicas=1,
            headers_only=self._headers_only or None,
        )
        try:
            info = await self._js.add_consumer(self.stream, config=config)
        except JsError as exc:
            raise LogError(f"cannot read JetStream stream {self.stream!r}: {exc}") from None
        self._consumer = info.name
        self._sub = await self._nc.subscribe(
            self._nc.new_inbox(), cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        self.pending = int(info.num_pending or 0)
        return self.pending

    async def fetch(self, batch: int, timeout: float = 10.0) -> list[StreamMessage]:
        """The next up to ``batch`` messages; fewer (or none) when the stream has no more.
        Raises ``LogError`` when messages the server sent went missing, the read's consumer
        is gone, or the server answered with an error: never a short read that looks
        complete."""
        if self._sub is None or self.pending <= 0:
            return []
        for _attempt in range(FETCH_ATTEMPTS):
            chunk, ended = await self._fetch_once(batch, timeout)
            if ended == "count" or self.pending <= 0:
                return chunk
            # the pull ended on a status, or with no answer, while the last count said
            # more were pending: the count may be stale (messages deleted or KV keys
            # written again meanwhile) or messages may be lost; the consumer knows which
            await self._check_nothing_missed()
            if chunk or self.pending <= 0:
                return chunk
            if ended == "timeout":
                raise LogError(
                    f"reading JetStream stream {self.stream!r} timed out after {timeout} s "
                    f"with {self.pending} message(s) pending; read again"
                )
        raise LogError(
            f"reading JetStream stream {self.stream!r}: no message came while the server "
            f"counts {self.pending} pending; read again"
        )

    async def _fetch_once(self, batch: int, timeout: float) -> tuple[list[StreamMessage], str]:
        """One pull: the messages, and what ended it: ``count`` (the batch or the pending
        count), ``status`` (404 or 408) or ``timeout`` (no answer; a server may hold a
        ``no_wait`` pull when its pending count is stale)."""
        assert self._sub is not None
        loop = asyncio.get_running_loop()
        self._chunk = []
        self._want = batch
        self._cut = False
        self._done = loop.create_future()
        await self._nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self._consumer}",
            b'{"batch":%d,"no_wait":true}' % batch,
            reply=self._sub.subject,
        )
        ended = "count"
        try:
            await asyncio.wait_for(self._done, timeout)
        except TimeoutError:
            ended = "timeout"
        chunk, self._chunk = self._chunk, []
        return chunk, "status" if self._cut else ended

    async def _check_nothing_missed(self) -> None:
        """Compare what the consumer sent with what arrived, and take its pending count."""
        try:
            info = await self._js.consumer_info(self.stream, self._consumer)
        except Exception as exc:  # NotFoundError (the node holding it failed), timeouts
            raise LogError(
                f"reading JetStream stream {self.stream!r}: cannot check the read's consumer "
                f"({type(exc).__name__}: {exc}); read again"
            ) from None
        sent = int(info.delivered.consumer_seq or 0) if info.delivered else 0
        if sent != self._delivered:
            raise LogError(
                f"reading JetStream stream {self.stream!r}: the server sent {sent} "
                f"message(s) and {self._delivered} arrived; read again"
            )
        self.pending = int(info.num_pending or 0)

    async def _on_msg(self, msg: Msg) -> None:
        """Collect one delivery; a status 404 (no messages) or 408 (expired) ends the
        chunk, any other status (503 no responders, 409) fails the read."""
        done = self._done
        if done is None or done.done():
            return
        if not msg.reply:
            headers = msg.headers or {}
            status = headers.get("Status", "")
            if status == "100":  # a heartbeat, not an answer
                return
            if status in END_OF_CHUNK:
                self._cut = True
                done.set_result(None)
            else:
                what = f"{status} {headers.get('Description', '')}".strip() or "no status"
                done.set_exception(
                    LogError(
                        f"reading JetStream stream {self.stream!r}: the server answered "
                        f"{what}; read again"
                    )
                )
            return
        meta = ack_metadata(msg.reply)
        if meta.consumer_seq != self._delivered + 1:
            done.set_exception(LogError(missed(self.stream, self._delivered, meta.consumer_seq)))
            return
        self._delivered = meta.consumer_seq
        self.pending = pending = meta.pending
        self._chunk.append(
            StreamMessage(meta.stream_seq, meta.time_ns, msg.subject, msg.data, msg.headers)
        )
        if pending == 0 or len(self._chunk) >= self._want:
            done.set_result(None)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if self._consumer:
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self.stream, self._consumer)
            self._consumer = ""
