"""The event log on NATS JetStream: the backend for running several daemons on one log.

Layout on the NATS side, for a stream named ``S`` (``[log] stream``):

- stream ``S``, subjects ``S.p.<n>``: the events. The stream sequence is the log sequence;
  each message is the same msgpack LogRecord the LMDB backend stores (published with
  sequence 0, filled in on read, because the stream assigns it only when storing). A user's
  events all go to one partition subject (see ``_partition``), which is what delivery uses to
  keep per-user order with several daemons.
- stream ``S-rejected``, subject ``S.rejected``: items that failed validation.
- KV bucket ``S-state``: cursors, source checkpoints, dead letters, replay jobs, retries,
  destinations: every side table, as ``<table>.<escaped key>``. Reads go to the stream
  leader (no direct get), so a value written by one daemon is read back by any other.

What differs from LMDB, on purpose, and why:

- An append is acknowledged when the stream (a quorum of its replicas) has stored every
  event; it is not atomic. If it fails midway, the caller answers an error and the client
  retries; the messages already stored are dropped as duplicates, because every event is
  published with ``Nats-Msg-Id`` = its messageId and the stream de-duplicates within its
  duplicate window (``[log] duplicate_window``). The same messageId sent twice within the
  window is stored once, on purpose: that is the retry safety Segment clients expect.
- The events of one append are contiguous unless another daemon appended at the same
  moment; ``AppendResult`` then spans the lowest to the highest sequence of its events.
- Side-table writes (``write_batch``, an append's ``side_ops``) are applied in order after
  the events are stored, each one durable, not all-or-nothing. A crash in between leaves a
  checkpoint behind its events, never ahead: at-least-once, with dedup absorbing the rest.
- ``received_at`` is the appending daemon's clock (never decreasing within a daemon), so
  ``seq_at_time`` across several daemons is as precise as their clocks agree (NTP: ms).

The NATS client is asyncio-only; the connection lives on a private loop thread so the
blocking methods work from anywhere, including from inside another event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ._derived import WALK_CHUNK, DerivedLogMethods
from ._errors import LogClosedError, LogError
from ._jetstream_layout import ensure_bucket, ensure_stream, events_stream, rejected_stream
from ._jetstream_publish import Outgoing, Publisher
from ._jetstream_read import StreamMessage, StreamReader
from ._jetstream_retry import Retrier
from ._jetstream_state import READ_CHUNK, StateBucket
from ._lmdb import META, iso_us, now_us
from ._loop_thread import LoopThread
from ._nats_connect import NatsOptions, connect, servers_text
from ._partition import partition_of, partition_subject, partition_wildcard
from ._records import (
    AppendResult,
    LogRecord,
    LogStats,
    RecordHeader,
    RejectedItem,
)

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from ..config import LogConfig

T = TypeVar("T")
SideOp = tuple[bytes, bytes, bytes | None]

FORMAT_VERSION = b"1"
SCAN_CHUNK = 1024
DEFAULT_PARTITIONS = 16
IN_LOOP_WAIT = 2.0
STATS_CACHE_S = 1.0
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")

_encoder = msgspec.msgpack.Encoder()
_record_decoder = msgspec.msgpack.Decoder(LogRecord)
_header_decoder = msgspec.msgpack.Decoder(RecordHeader)
_rejected_decoder = msgspec.msgpack.Decoder(RejectedItem)


def with_seq(payload: bytes, seq: int) -> bytes:
    """The stored record with its sequence filled in. A record is published as a msgpack
    array whose first element is the integer 0 (bytes ``94 00``); msgpack integers are
    self-delimiting, so splicing in the real sequence yields the record LMDB would hold."""
    return b"\x94" + _encoder.encode(seq) + payload[2:]


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _require_nats() -> None:
    try:
        import nats  # noqa: F401
    except ImportError:
        raise LogError(
            '[log] backend = "jetstream" needs the NATS client: '
            "pip install 'headwater[jetstream]' (or: pip install nats-py)"
        ) from None


class JetStreamLog(DerivedLogMethods):
    """The log in a JetStream stream; any number of daemons may open the same one."""

    def __init__(
        self,
        options: NatsOptions,
        stream: str = "headwater",
        *,
        replicas: int = 1,
        partitions: int | None = None,
        max_size: int | None = None,
        duplicate_window: float = 120.0,
        ack_timeout: float = 30.0,
        readonly: bool = False,
    ) -> None:
        _require_nats()
        if not _STREAM_NAME.match(stream):
            raise LogError(
                f"[log] stream = {stream!r}: a JetStream stream name is 1-200 of A-Z a-z 0-9 _ -"
            )
        self.options = options
        self.stream = stream
        self.rejected_stream = f"{stream}-rejected"
        self.bucket = f"{stream}-state"
        self.replicas = replicas
        self.readonly = readonly
        self._max_size = max_size
        self._duplicate_window = duplicate_window
        self._ack_timeout = ack_timeout
        self._partitions_given = partitions is not None
        self._use_partitions(partitions or DEFAULT_PARTITIONS)
        self._rejected_subject = f"{stream}.rejected"
        self._last_received = 0
        self._closing = False
        self._closed = False
        self._in_flight = 0
        self._idle: asyncio.Event | None = None
        self._retry = Retrier(ack_timeout, servers_text(options.servers))
        self._stats_cache: tuple[float, LogStats] | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._state: StateBucket | None = None
        self._publisher: Publisher | None = None
        self._bridge = LoopThread(f"headwater-jetstream-{stream}")
        try:
            self._bridge.run(self._open(), timeout=ack_timeout + 30)
        except BaseException:
            self._bridge.run(self._disconnect(), timeout=10)
            self._bridge.stop()
            raise

    def _use_partitions(self, partitions: int) -> None:
        self.partitions = partitions
        self._subjects = [partition_subject(self.stream, n) for n in range(partitions)]

    @classmethod
    def from_config(cls, config: LogConfig, *, readonly: bool = False) -> JetStreamLog:
        options = NatsOptions(
            servers=tuple(config.servers) or ("nats://127.0.0.1:4222",),
            credentials=config.credentials,
            tls=config.tls,
            tls_ca=config.tls_ca,
            tls_cert=config.tls_cert,
            tls_key=config.tls_key,
        )
        return cls(
            options,
            config.stream,
            replicas=config.replicas,
            partitions=config.partitions,
            max_size=config.max_size,
            duplicate_window=config.duplicate_window,
            ack_timeout=config.ack_timeout,
            readonly=readonly,
        )

    @property
    def location(self) -> str:
        """Where the log lives, for people (server passwords redacted)."""
        return f"jetstream stream {self.stream!r} on {servers_text(self.options.servers)}"

    # -- connection and layout ---------------------------------------------------------

    async def _open(self) -> None:
        from nats.js.errors import BucketNotFoundError, NotFoundError

        self._idle = asyncio.Event()
        self._idle.set()
        self._nc = nc = await connect(self.options)
        self._js = js = nc.jetstream(timeout=5)
        if self.readonly:
            for name in (self.stream, self.rejected_stream):
                try:
                    await js.stream_info(name)
                except NotFoundError:
                    raise LogError(
                        f"no JetStream stream {name!r} on {servers_text(self.options.servers)}; "
                        "run `headwater serve` with this [log] config first"
                    ) from None
            try:
                kv = await js.key_value(self.bucket)
            except BucketNotFoundError:
                kv = None
            self._state = StateBucket(nc, js, self.bucket, kv, self._retry)
            stored = await self._state.get(META, b"partitions")
            if stored is not None:
                self._use_partitions(int(stored))
        else:
            replicas, retry = self.replicas, self._retry
            await ensure_stream(
                js,
                events_stream(
                    self.stream,
                    replicas=replicas,
                    duplicate_window=self._duplicate_window,
                    max_size=self._max_size,
                ),
                retry,
            )
            config = rejected_stream(
                self.rejected_stream, self._rejected_subject, replicas=replicas
            )
            await ensure_stream(js, config, retry)
            kv = await ensure_bucket(js, self.bucket, replicas=replicas, retry=retry)
            self._state = StateBucket(nc, js, self.bucket, kv, retry)
            await self._check_format(self._state)
        self._publisher = Publisher(nc, deadline=self._ack_timeout)
        await self._publisher.start()

    async def _check_format(self, state: StateBucket) -> None:
        """The format version, and the partition count every daemon must agree on: a
        daemon with another count would put a user's events on another subject."""
        stored = await state.get(META, b"format_version")
        if stored is None:
            await state.write([(META, b"format_version", FORMAT_VERSION)])
        elif stored != FORMAT_VERSION:
            raise LogError(
                f"JetStream stream {self.stream!r} has log format {stored.decode()}, this build "
                f"reads {FORMAT_VERSION.decode()}; use the Headwater version that wrote it"
            )
        partitions = await state.get(META, b"partitions")
        if partitions is None:
            await state.write([(META, b"partitions", str(self.partitions).encode())])
        elif not self._partitions_given:
            self._use_partitions(int(partitions))
        elif int(partitions) != self.partitions:
            raise LogError(
                f"[log] partitions = {self.partitions}, but stream {self.stream!r} is "
                f"partitioned in {int(partitions)}; set partitions = {int(partitions)}. To "
                "change it, let delivery catch up (lag 0), stop every daemon, then run "
                f"`nats kv del {self.bucket} meta.partitions` (docs/scale.md)"
            )

    def _require_js(self) -> JetStreamContext:
        if self._js is None:
            raise LogClosedError("the log is closed")
        return self._js

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the NATS loop and wait. Called from a thread that runs an event
        loop (a daemon's), the wait is capped at IN_LOOP_WAIT seconds: a NATS failover must
        not freeze that loop for the whole ack timeout."""
        if _in_event_loop():
            try:
                return self._bridge.run(coro, timeout=IN_LOOP_WAIT)
            except TimeoutError:
                raise LogError(
                    f"JetStream did not answer within {IN_LOOP_WAIT:g} s (a blocking log call "
                    "made from an event loop); check the NATS servers"
                ) from None
        return self._bridge.run(coro)

    # -- appending ------------------------------------------------------------------------

    async def append(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[SideOp] = (),
    ) -> AppendResult:
        """Publish the events (and rejected items), wait until the stream acknowledged
        every one, then apply ``side_ops``; return where the events landed."""
        self._check_open()
        return await self._bridge.call(self._append(source, events, rejected, side_ops))

    def append_sync(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[SideOp] = (),
    ) -> AppendResult:
        """The blocking form of ``append`` for tools without an event loop."""
        self._check_open()
        return self._blocking(self._append(source, events, rejected, side_ops))

    def _check_open(self) -> None:
        if self._closing:
            raise LogClosedError("the log is shutting down")
        if self.readonly:
            raise LogError("the log was opened read-only")

    async def _append(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem],
        side_ops: Sequence[SideOp],
    ) -> AppendResult:
        if self._closing or self._publisher is None:
            raise LogClosedError("the log is shutting down")
        self._in_flight += 1
        if self._idle is not None:
            self._idle.clear()
        try:
            received_at = max(now_us(), self._last_received)
            self._last_received = received_at
            encode = _encoder.encode
            subjects, partitions = self._subjects, self.partitions
            messages: list[Outgoing] = []
            for event in events:
                payload = encode(LogRecord(0, source, received_at, event))
                message_id = event.get("messageId")
                msg_id = str(message_id) if message_id else uuid.uuid4().hex
                messages.append(
                    Outgoing(subjects[partition_of(event, partitions)], payload, msg_id)
                )
            for bad in rejected:
                messages.append(Outgoing(self._rejected_subject, encode(bad), uuid.uuid4().hex))
            acks = await self._publisher.publish(messages)
            seqs = [ack.seq for ack in acks[: len(events)]]
            if side_ops:
                await self._require_state().write(side_ops)
            if seqs:
                return AppendResult(min(seqs), max(seqs), received_at, len(rejected))
            last = await self._last_seq()
            return AppendResult(last + 1, last, received_at, len(rejected))
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self._idle is not None:
                self._idle.set()

    # -- reading --------------------------------------------------------------------------

    async def _stream_state(self, stream: str) -> Any:
        js = self._require_js()
        info = await self._retry(lambda: js.stream_info(stream), f"stream {stream}")
        return info.state

    async def _last_seq(self) -> int:
        state = await self._stream_state(self.stream)
        return int(state.last_seq or 0)

    def last_seq(self) -> int:
        return self._blocking(self._last_seq())

    def first_seq(self) -> int:
        state = self._blocking(self._stream_state(self.stream))
        return int(state.first_seq or 0) if state.messages else 0

    async def _get_msg(self, seq: int, *, next_at_or_after: bool = False) -> StreamMessage | None:
        from nats.js.errors import NotFoundError

        js = self._require_js()
        subject = partition_wildcard(self.stream) if next_at_or_after else None

        async def get() -> Any:
            return await js.get_msg(self.stream, seq=seq, subject=subject, next=next_at_or_after)

        try:
            raw = await self._retry(get, f"reading sequence {seq}")
        except NotFoundError:
            return None
        if raw.data is None or raw.seq is None:
            return None
        return StreamMessage(raw.seq, 0, raw.subject or "", raw.data, raw.headers)

    def get(self, seq: int) -> LogRecord | None:
        if seq < 1:
            return None
        found = self._blocking(self._get_msg(seq))
        return None if found is None else _record_decoder.decode(with_seq(found.data, seq))

    def scan_raw(
        self, start_seq: int = 1, end_seq: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(seq, msgpack record) pairs in order, read through a short-lived consumer in
        chunks; the scan ends at the end of the stream as it was when last read."""
        for message in self._read_stream(self.stream, start_seq, end_seq):
            yield message.seq, with_seq(message.data, message.seq)

    def _read_stream(
        self, stream: str, start_seq: int = 1, end_seq: int | None = None
    ) -> Iterator[StreamMessage]:
        """Blocking chunked read of a stream for a sync caller; the consumer is removed
        when the iteration ends or is abandoned (and by the server if that is missed)."""
        if end_seq is not None and end_seq < max(start_seq, 1):
            return
        nc, js = self._nc, self._require_js()
        assert nc is not None
        reader = StreamReader(nc, js, stream, start_seq=start_seq)
        try:
            if self._blocking(reader.open()) == 0:
                return
            while True:
                chunk = self._blocking(reader.fetch(SCAN_CHUNK))
                for message in chunk:
                    if end_seq is not None and message.seq > end_seq:
                        return
                    yield message
                if not chunk or reader.pending == 0:
                    return
        finally:
            self._bridge.submit(reader.close())

    def seq_at_time(self, received_at_us: int) -> int:
        """The first sequence received at or after the time (last_seq + 1 when none).

        Bisects the sequence range on the records' ``received_at``, skipping deleted
        sequences; about log2(events) reads from the stream leader."""
        return self._blocking(self._seq_at_time(received_at_us))

    async def _seq_at_time(self, at: int) -> int:
        state = await self._stream_state(self.stream)
        if not state.messages:
            return int(state.last_seq or 0) + 1
        lo, hi = int(state.first_seq), int(state.last_seq) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            found = await self._get_msg(mid, next_at_or_after=True)
            if found is None or found.seq >= hi:
                hi = mid
                continue
            if _header_decoder.decode(with_seq(found.data, found.seq)).received_at < at:
                lo = found.seq + 1
            else:  # nothing stored in [mid, found): every sequence from mid on is late enough
                hi = mid
        return lo

    def rejected(self, limit: int | None = None) -> Iterator[tuple[int, RejectedItem]]:
        """Rejected items in arrival order."""
        out: list[tuple[int, RejectedItem]] = []
        for message in self._read_stream(self.rejected_stream):
            out.append((message.seq, _rejected_decoder.decode(message.data)))
            if limit is not None and len(out) >= limit:
                break
        return iter(out)

    def stats(self) -> LogStats:
        """From stream info (5 requests). From inside an event loop (a metrics scrape), a
        result up to STATS_CACHE_S old is reused, so one scrape's gauges cost one round."""
        cached = self._stats_cache
        if cached is not None and _in_event_loop():
            at, value = cached
            if time.monotonic() - at < STATS_CACHE_S:
                return value
        value = self._blocking(self._stats())
        self._stats_cache = (time.monotonic(), value)
        return value

    async def _stats(self) -> LogStats:
        state = await self._stream_state(self.stream)
        rejected = await self._stream_state(self.rejected_stream)
        total_bytes = int(state.bytes or 0) + int(rejected.bytes or 0)
        if self._state is not None and self._state.kv is not None:
            total_bytes += int((await self._stream_state(f"KV_{self.bucket}")).bytes or 0)
        first = last = None
        first_time = last_time = None
        if state.messages:
            head = await self._get_msg(int(state.first_seq), next_at_or_after=True)
            tail = await self._get_msg(int(state.last_seq))
            if head is not None:
                first = head.seq
                first_time = iso_us(_header_decoder.decode(with_seq(head.data, 1)).received_at)
            if tail is not None:
                last = tail.seq
                last_time = iso_us(_header_decoder.decode(with_seq(tail.data, 1)).received_at)
        return LogStats(
            events=int(state.messages or 0),
            first_seq=first,
            last_seq=last,
            first_time=first_time,
            last_time=last_time,
            bytes=total_bytes,
            rejected=int(rejected.messages or 0),
        )

    # -- cursors and side tables ----------------------------------------------------------

    def get_value(self, table: bytes, key: bytes) -> bytes | None:
        return self._blocking(self._require_state().get(table, key))

    def items(self, table: bytes, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """(key, value) pairs of a side table whose key starts with ``prefix``, sorted."""
        return self._blocking(self._require_state().items(table, prefix))

    def count(self, table: bytes, prefix: bytes = b"") -> int:
        return self._blocking(self._require_state().count(table, prefix))

    def page(
        self, table: bytes, prefix: bytes = b"", *, after: bytes | None = None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """See ``StateBucket.page``: each page reads every key of the table (headers only)."""
        return self._blocking(self._require_state().page(table, prefix, after, limit))

    def walk(
        self, table: bytes, prefix: bytes = b"", *, chunk: int = WALK_CHUNK
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """One pass of one consumer over the table, in the bucket's order (not key order)."""
        chunks = self._require_state().chunks(table, prefix, fetch=min(chunk, READ_CHUNK))

        async def step() -> list[tuple[bytes, bytes]] | None:
            return await anext(chunks, None)

        async def stop() -> None:
            await chunks.aclose()

        rows: list[tuple[bytes, bytes]] = []
        try:
            while (got := self._blocking(step())) is not None:
                rows += got
                while len(rows) >= chunk:
                    yield rows[:chunk]
                    rows = rows[chunk:]
            if rows:
                yield rows
        finally:
            if not self._closed:
                self._blocking(stop())

    def write_batch(self, ops: Sequence[SideOp]) -> None:
        """Put (value) or delete (None) side-table keys, in order, each durable on return.
        Not all-or-nothing: order the ops so that a prefix of them is a safe state."""
        if self.readonly:
            raise LogError("the log was opened read-only")
        self._blocking(self._require_state().write(ops))

    def _require_state(self) -> StateBucket:
        if self._state is None:
            raise LogClosedError("the log is closed")
        return self._state

    # -- for services that talk to NATS themselves (shared delivery) -----------------------

    async def nats_call(
        self, fn: Callable[[Client, JetStreamContext], Coroutine[Any, Any, T]]
    ) -> T:
        """Await ``fn(nc, js)`` run on the log's own connection and loop, from any loop.
        Shared delivery uses it for consumers and partition leases, so one daemon keeps
        one NATS connection."""
        nc, js = self._nc, self._js
        if nc is None or js is None or self._closed:
            raise LogClosedError("the log is closed")
        return await self._bridge.call(fn(nc, js))

    async def on_nats_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the log's NATS loop (objects bound to the connection,
        such as a consumer's puller, must only be used there)."""
        if self._closed:
            coro.close()
            raise LogClosedError("the log is closed")
        return await self._bridge.call(coro)

    async def awrite_batch(self, ops: Sequence[SideOp]) -> None:
        """``write_batch`` for callers on an event loop (it does not block the loop)."""
        if self.readonly:
            raise LogError("the log was opened read-only")
        await self._bridge.call(self._require_state().write(ops))

    # -- lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Refuse new appends, wait for those in flight, close."""
        self._closing = True
        if self._idle is not None and not self._bridge.loop.is_closed():
            idle = self._idle
            await self._bridge.call(idle.wait())
        self.close()

    def close(self) -> None:
        self._closing = True
        if self._closed:
            return
        self._closed = True
        try:
            self._bridge.run(self._disconnect(), timeout=10)
        finally:
            self._bridge.stop()

    async def _disconnect(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:
                await self._nc.close()
        self._js = None
        self._state = None

    def drop(self) -> None:
        """Delete the streams and the buckets: every event, cursor and lease. For tests and
        tear-down scripts; a daemon never calls it."""
        from nats.js.errors import NotFoundError

        async def drop_all() -> None:
            js = self._require_js()
            leases = f"KV_{self.stream}-leases"  # written by shared delivery
            for name in (self.stream, self.rejected_stream, f"KV_{self.bucket}", leases):
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(name)

        self._blocking(drop_all())

    def __enter__(self) -> JetStreamLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
