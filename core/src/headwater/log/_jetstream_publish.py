"""Pipelined JetStream publishes with acknowledgements, retries and deduplication.

Every message of a call goes out at once, each with its own reply subject under one
wildcard inbox, so a batch of a thousand events costs one round trip, not a thousand. The
call returns when the stream has acknowledged every message (the ack names its stream
sequence). Messages whose ack does not come within ``ack_wait`` (a lost connection, a
stream leader being elected after a node died) are published again with the same
``Nats-Msg-Id``: the stream drops the copy within its duplicate window and answers with the
original sequence, so a retry can never store an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from ._errors import LogClosedError, LogError, LogFullError, LogUnavailableError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

logger = logging.getLogger("headwater.log.jetstream")


def _clean_id(msg_id: str) -> bytes:
    """A header value: no line breaks (a messageId comes from clients), bounded size."""
    raw = msg_id.encode("utf-8", "replace")[:512]
    if b"\r" in raw or b"\n" in raw:
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return raw.strip() or b"-"


def _too_large(size: int) -> LogError:
    return LogError(
        f"an event of {size} bytes exceeds the NATS server's max_payload; raise max_payload "
        "in the server config or send smaller events"
    )


class Outgoing(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: _ApiError | None = None


_ack_decoder = msgspec.json.Decoder(PubAck)
_NO_RESPONDERS = PubAck(error=_ApiError(503, 0, "no responders: no stream leader answered"))
# Errors that go away by themselves: no leader yet, JetStream catching up after a restart.
_RETRYABLE_CODES = frozenset({408, 503, 504})
# "maximum bytes/messages exceeded" (discard new): the log is full, retrying cannot help.
_FULL_ERR_CODES = frozenset({10047, 10077, 10078})


class _Batch:
    __slots__ = ("acks", "done", "remaining")

    def __init__(self, size: int) -> None:
        self.acks: list[PubAck | None] = [None] * size
        self.remaining = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Publisher:
    """Publishes batches of messages to JetStream on one connection and waits for acks."""

    def __init__(self, nc: Client, *, ack_wait: float = 2.0, deadline: float = 30.0) -> None:
        self._nc = nc
        self._ack_wait = ack_wait
        self._deadline = deadline
        self._tokens = itertools.count(1)
        self._waiting: dict[str, tuple[_Batch, int]] = {}
        self._lock = asyncio.Lock()
        self._prefix = ""
        self._sub: Subscription | None = None
        self.retries = 0
        """Messages published again because their ack did not come (or said retry)."""

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(
            f"{self._prefix}.*",
            cb=self._on_ack,
            pending_msgs_limit=4_000_000,
            pending_bytes_limit=1 << 30,
        )

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) + 1 :]
        entry = self._waiting.pop(token, None)
        if entry is None:
            return  # the ack of an attempt given up on; its retry has its own token
        batch, index = entry
        if msg.data:
            try:
                ack = _ack_decoder.decode(msg.data)
            except msgspec.DecodeError:
                ack = PubAck(error=_ApiError(500, 0, f"unreadable ack {msg.data[:80]!r}"))
        else:  # a status message: 503 no responders while a stream has no leader
            ack = _NO_RESPONDERS
        batch.acks[index] = ack
        batch.remaining -= 1
        if batch.remaining == 0 and not batch.done.done():
            batch.done.set_result(None)

    async def publish(self, messages: Sequence[Outgoing]) -> list[PubAck]:
        """Publish all messages; return their acks in order once every one is stored.

        Raises LogFullError when the stream refuses them for size, LogError when they are
        not all acknowledged within the deadline (some may be stored; publishing them again
        is harmless thanks to deduplication)."""
        if not messages:
            return []
        batch = _Batch(len(messages))
        todo = list(range(len(messages)))
        started = time.monotonic()
        wait = self._ack_wait
        while True:
            tokens = await self._send(batch, messages, todo)
            try:
                await asyncio.wait_for(asyncio.shield(batch.done), wait)
            except TimeoutError:
                pass  # the unacknowledged ones are retried below
            finally:
                for token in tokens:
                    self._waiting.pop(token, None)
            todo = self._unfinished(batch)
            if not todo:
                return [ack for ack in batch.acks if ack is not None]
            elapsed = time.monotonic() - started
            if elapsed >= self._deadline:
                raise LogUnavailableError(
                    f"JetStream did not acknowledge {len(todo)} of {len(messages)} events "
                    f"within {self._deadline:.0f} s; some may be stored. Check that a quorum "
                    "of the NATS servers in [log] servers is up; retrying the request is safe "
                    "(deduplicated on messageId)"
                )
            self.retries += len(todo)
            logger.warning(
                "jetstream publish retry",
                extra={"fields": {"unacknowledged": len(todo), "elapsed_s": round(elapsed, 3)}},
            )
            await asyncio.sleep(min(0.25, wait / 4))
            wait = min(wait * 2, self._deadline - elapsed)

    async def _send(
        self, batch: _Batch, messages: Sequence[Outgoing], todo: list[int]
    ) -> list[str]:
        """Write the messages to the connection back to back (no await yields between
        them), so the messages of one call land contiguously unless another process
        publishes at the same moment."""
        tokens: list[str] = []
        batch.remaining = len(todo)
        if batch.done.done():
            batch.done = asyncio.get_running_loop().create_future()
        async with self._lock:
            for index in todo:
                batch.acks[index] = None
                token = str(next(self._tokens))
                self._waiting[token] = (batch, index)
                tokens.append(token)
            if self._raw_ok():
                await self._send_frames(messages, todo, tokens)
            else:
                await self._send_each(messages, todo, tokens)
        return tokens

    def _raw_ok(self) -> bool:
        nc: Any = self._nc
        return bool(nc.is_connected) and hasattr(nc, "_send_command")

    async def _send_frames(
        self, messages: Sequence[Outgoing], todo: list[int], tokens: list[str]
    ) -> None:
        """The whole batch as one buffer of HPUB frames: the protocol the client would
        write, without its per-message checks and formatting, which cost more than the
        rest of an append (see benchmarks/bench_jetstream.py). Subjects are ours, message
        ids are cleaned of line breaks, sizes are checked against the server's limit."""
        nc: Any = self._nc
        limit = int(nc.max_payload)
        prefix = self._prefix.encode()
        parts: list[bytes] = []
        for index, token in zip(todo, tokens, strict=True):
            message = messages[index]
            header = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % _clean_id(message.msg_id)
            size = len(header) + len(message.payload)
            if size > limit:
                raise _too_large(len(message.payload))
            parts.append(
                b"HPUB %s %s.%s %d %d\r\n%s%s\r\n"
                % (
                    message.subject.encode(),
                    prefix,
                    token.encode(),
                    len(header),
                    size,
                    header,
                    message.payload,
                )
            )
        await nc._send_command(b"".join(parts))
        await nc._flush_pending()

    async def _send_each(
        self, messages: Sequence[Outgoing], todo: list[int], tokens: list[str]
    ) -> None:
        """Through the client's public ``publish``: while reconnecting (it buffers, up to
        its limit) or with a client that lacks the raw path."""
        from nats import errors as nats_errors

        for index, token in zip(todo, tokens, strict=True):
            message = messages[index]
            try:
                await self._nc.publish(
                    message.subject,
                    message.payload,
                    reply=f"{self._prefix}.{token}",
                    headers={"Nats-Msg-Id": message.msg_id},
                )
            except nats_errors.ConnectionClosedError:
                raise LogClosedError("the NATS connection of the log is closed") from None
            except nats_errors.OutboundBufferLimitError:
                # Reconnecting with a full buffer: the unsent rest is retried after the
                # ack wait, like a message whose ack was lost.
                return
            except nats_errors.MaxPayloadError:
                raise _too_large(len(message.payload)) from None

    @staticmethod
    def _unfinished(batch: _Batch) -> list[int]:
        todo: list[int] = []
        for index, ack in enumerate(batch.acks):
            if ack is None:
                todo.append(index)
            elif ack.error is not None:
                err = ack.error
                if err.err_code in _FULL_ERR_CODES or "maximum" in err.description:
                    raise LogFullError(
                        f"the JetStream stream is full ({err.description}); raise [log] "
                        "max_size or the stream's limits, or free space"
                    )
                if err.code in _RETRYABLE_CODES:
                    todo.append(index)
                else:
                    raise LogError(
                        f"JetStream refused an event: {err.description} "
                        f"(code {err.code}, err_code {err.err_code})"
                    )
        return todo

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
