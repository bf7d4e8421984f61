"""The delivery loop of one destination: read the log from its cursor, filter, hand events
to lanes, and keep the durable state moving.

Tasks per destination, none shared with another destination: a reader, ``concurrency``
lanes and one committer. The reader reads the log in short read transactions (never
holding one across an await) and stops reading ahead once ``max_in_flight`` events past the
cursor are unfinished, so a dead destination costs a bounded amount of memory and its
backlog stays in the log as lag. It learns of new events from the log's commit listener
when the log is in this process, and by polling otherwise (an import from another
process).

Dead letters are redriven through the same lanes: a redrive task moves them into the retry
table as fresh events (attempts start again at 0), a chunk at a time as the destination
has room (see _redrive.py). `headwater dlq redrive` runs in another process and must not
touch the retry table under a running router's feet, so it writes a redrive request to
the ``destinations`` table, which that task polls about once a second (and every start
picks up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from msgspec import ValidationError

from headwater_spec import Destination, Event, EventError, Outcome, event_from_dict

from ..log import AnyLog, LogClosedError, LogRecord, now_us
from ._batcher import BatchLimits, estimate_json_size
from ._cancel import cancel_and_wait
from ._decode import decode_routed
from ._filter import EventFilter
from ._health import Health
from ._lane import Item, Lane, lane_index, park_record
from ._metrics import Histogram
from ._ratelimit import RateLimiter
from ._records import (
    DEAD_LETTERS,
    DESTINATIONS,
    RETRIES,
    PendingRecord,
    RedriveProgress,
    cursor_name,
    decode_destination,
    decode_pending,
    decode_redrive,
    decode_redriving,
    encode,
    event_key,
    event_prefix,
    redrive_key,
    redriving_key,
    stats_key,
)
from ._redrive import redrive_chunk, room, widen
from ._retry import RetryPolicy
from ._state import COMMIT_INTERVAL, DeliveryState
from ._status import DestinationStatus, read_status
from ._supervise import LoopTasks, RestartBackoff, describe, supervise

_log = logging.getLogger("headwater.router")
_decode_record = msgspec.msgpack.Decoder(LogRecord).decode
READ_CHUNK = 1024
LANE_CACHE = 100_000


class DeliverySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How one destination is delivered to (see router._settings for the config mapping)."""

    limits: BatchLimits = BatchLimits()
    concurrency: int = 4
    max_in_flight: int = 0
    """Events read past the cursor and not yet finished; 0 picks 2 x lanes x batch (a batch
    in flight and one forming per lane), at least 2,048. More read-ahead adds no throughput
    but costs memory and, measured, time: to a file in 1,000-event batches the router
    spent ~11 us per event with 16,000 events in flight against ~9.5 us with 8,000 (what
    is in flight no longer fits the CPU caches)."""
    policy: RetryPolicy = RetryPolicy()
    rate_limit: float | None = None
    start: str = "now"
    poll_interval: float = 0.5
    redrive_interval: float = 1.0
    send_timeout: float = 120.0

    @property
    def window(self) -> int:
        return self.max_in_flight or max(2048, 2 * self.concurrency * self.limits.max_count)


class StartError(ValueError):
    """A destination whose `start` cannot be understood."""


class DestinationLoop(LoopTasks):
    def __init__(
        self,
        log: AnyLog,
        destination_id: str,
        connector: Destination,
        *,
        connector_name: str = "",
        event_filter: EventFilter | None = None,
        settings: DeliverySettings | None = None,
    ) -> None:
        self.log = log
        self.id = destination_id
        self.connector = connector
        self.connector_name = connector_name or getattr(
            getattr(connector, "spec", None), "name", type(connector).__name__
        )
        self.filter = event_filter or EventFilter()
        self.settings = settings or DeliverySettings()
        self.limiter = RateLimiter(self.settings.rate_limit)
        self.health = Health(self.settings.policy, self.limiter, self._recovered)
        self.latency = Histogram()
        self.on_latency: Callable[[float], None] | None = None
        """Told of every send's duration in seconds (the daemon's histogram)."""
        self.lanes: list[Lane] = []
        self._lane_of: dict[str, int] = {}
        """Lane index per user, remembered (crc32 of every event's user costs)."""
        self.state: DeliveryState | None = None
        self.read_pos = 0
        self._skip: set[int] = set()
        self._new_data = asyncio.Event()
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._committer: asyncio.Task[None] | None = None
        self._redrive: RedriveProgress | None = None
        """The redrive under way (its durable copy is ``redriving\\0<id>``), None when none."""
        self._redrive_room = asyncio.Event()
        self._redriven: list[tuple[PendingRecord, int]] = []
        """The chunk last re-queued, parked once its commit has landed."""
        self._stopping = False
        self._failed = False
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = RestartBackoff()
        self.label = f"destination {destination_id}"
        self.log_extra: dict[str, Any] = {"fields": {"destination": destination_id}}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self._open()
        self._supervisor = asyncio.create_task(supervise(self), name=f"hw-supervise-{self.id}")

    async def _open(self) -> None:
        """Open the delivery state from the log (cursor, record, parked retries) and start
        the tasks: at start, and again after a task failed (see _supervise.py)."""
        previous = self.state
        record = decode_destination(self.log.get_value(DESTINATIONS, stats_key(self.id)))
        record.state = "running"
        record.started_at = now_us()
        record.restart_at = 0
        record.pid = os.getpid()
        stored = self.log.get_cursor(cursor_name(self.id))
        cursor = stored if stored is not None else self._initial_cursor()
        first = self.log.first_seq()
        if first and cursor < first:
            _log.warning(
                "destination %s: events %d..%d are no longer in the log; continuing at %d",
                self.id,
                cursor,
                first - 1,
                first,
                extra={"fields": {"destination": self.id}},
            )
            cursor = first
        state = DeliveryState(self.log, self.id, cursor, record)
        if previous is not None:
            state.on_count = previous.on_count
        if stored != cursor:
            state.saved_cursor = -1  # write the starting point with the first commit
        self.state = state
        self.read_pos = cursor
        self._skip = set()
        self._failed = False
        settings = self.settings
        self.lanes = [
            Lane(
                i,
                self.id,
                send=self._send,
                state=state,
                limiter=self.limiter,
                health=self.health,
                policy=settings.policy,
                limits=settings.limits,
                load_pending=self._load_pending,
                latency=self._observe_latency,
                send_timeout=settings.send_timeout,
                on_progress=self._progress,
            )
            for i in range(max(1, settings.concurrency))
        ]
        self._lane_of = {}
        raw = self.log.get_value(DESTINATIONS, redriving_key(self.id))
        self._redrive = None if raw is None else decode_redriving(raw)
        self._redriven = []
        self._load_parked(cursor)
        self._probe_parked()
        state.touch()
        await state.commit()
        self._committer = asyncio.create_task(state.run(), name=f"hw-commit-{self.id}")
        self._tasks = [
            asyncio.create_task(self._read(), name=f"hw-read-{self.id}"),
            asyncio.create_task(self._redrive_task(), name=f"hw-redrive-{self.id}"),
        ]
        self._tasks += [
            asyncio.create_task(lane.run(), name=f"hw-lane-{self.id}-{lane.index}")
            for lane in self.lanes
        ]
        _log.info(
            "destination %s (%s) delivering from seq %d, %d lanes, %d parked",
            self.id,
            self.connector_name,
            cursor,
            len(self.lanes),
            self.pending,
            extra=self.log_extra,
        )

    async def stop(self) -> None:
        """Stop sending (in-flight requests are abandoned and re-sent after a restart),
        save the state, close the connector."""
        self._stopping = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()  # first, so the tasks' ends below are not taken as failures
        await self.halt()
        if supervisor is not None:
            await cancel_and_wait([supervisor])
        state = self.state
        if state is not None:
            state.record.state = "stopped"
            state.record.pid = 0
            state.record.restart_at = 0
            state.touch()
            try:
                if self._failed:  # what is in memory is not to be trusted: only the record
                    await state.save_record()
                else:
                    await state.flush()
            except LogClosedError:
                _log.warning("destination %s: log closed before the last state was saved", self.id)
        with contextlib.suppress(Exception):
            await self.connector.close()

    # -- supervision (see _supervise.py) -----------------------------------------------

    def may_finish(self, task: asyncio.Task[None]) -> bool:
        return False

    async def failed(self, task: str, error: BaseException, retry_in: float) -> None:
        """Log and count a failed task and save the state ``failed``. The counters go back
        to what was last committed, as after a crash."""
        self._failed = True
        state = self.state
        assert state is not None
        await state.landed()  # the commit the cancelled committer had in flight
        record = decode_destination(self.log.get_value(DESTINATIONS, stats_key(self.id)))
        state.record = record
        now = now_us()
        record.state = "failed"
        record.last_failure, record.last_failure_at = self._described(error), now
        record.restart_at = now + int(retry_in * 1e6)
        state.count("task_failures")
        _log.error(
            "destination %s: delivery task %s failed (%s); delivery restarts from the cursor "
            "in %g s",
            self.id,
            task,
            record.last_failure,
            retry_in,
            exc_info=error,
            extra={"fields": {"destination": self.id, "task": task, "restart_in": retry_in}},
        )
        await state.save_record()

    def _described(self, error: BaseException) -> str:
        """The error's text with the instance's secrets masked (it is stored and shown)."""
        connector = self.connector
        return connector.spec.redactor(connector.config)(describe(error))

    async def reopen(self) -> None:
        await self._open()

    def notify(self, *_: Any) -> None:
        """New events were committed (called from the log's commit listener)."""
        self._new_data.set()

    # -- reading -----------------------------------------------------------------------

    def _initial_cursor(self) -> int:
        start = self.settings.start.strip()
        if start == "beginning":
            return max(1, self.log.first_seq())
        if start == "now":
            return self.log.last_seq() + 1
        try:
            moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise StartError(
                f'destination {self.id}: `start` = {start!r}; use "now", "beginning" or an '
                "ISO 8601 time such as 2024-05-01T00:00:00Z"
            ) from None
        return self.log.seq_at_time(int(moment.timestamp() * 1_000_000))

    async def _read(self) -> None:
        state = self.state
        assert state is not None
        window = self.settings.window
        poll = self.settings.poll_interval
        while True:
            limit = state.watermark.low + window - 1
            if self.read_pos > limit:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), poll)
                continue
            self._new_data.clear()
            end = min(limit, self.read_pos + READ_CHUNK - 1)
            last = self._admit_chunk(self.read_pos, end)
            if last:
                self.read_pos = last + 1
                await asyncio.sleep(0)
                continue
            if self.log.last_seq() >= self.read_pos:
                self._skip_gap()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_data.wait(), poll)

    def _skip_gap(self) -> None:
        """Events below the log's first seq were removed (retention): step over them."""
        state = self.state
        assert state is not None
        first = self.log.first_seq()
        if first > self.read_pos:
            for seq in range(self.read_pos, first):
                state.finish(seq)
            self.read_pos = first

    def _admit_chunk(self, start: int, end: int) -> int:
        """Read seqs ``start..end`` and hand each wanted event to its user's lane, each
        lane's share in one go; return the last seq read (0 when none).

        The hot loop of delivery, one pass per event: names are bound locally, and the
        usual event is only routed here (type, user, integrations); its lane decodes the
        model right before sending it, so what waits in the lanes stays small (measured:
        time per event grows with the memory in flight)."""
        state = self.state
        assert state is not None
        skip = self._skip
        routed = decode_routed
        wants = self.filter.wants_routed
        everything = self.filter.open
        lanes = self.lanes
        count = len(lanes)
        lane_of = self._lane_of
        shares: list[list[Item]] = [[] for _ in lanes]
        last = 0
        for seq, raw in self.log.scan_raw(start, end):
            last = seq
            if skip and seq in skip:  # parked before a restart; the retry table has it
                skip.discard(seq)
                state.finish(seq)
                continue
            try:
                record = routed(raw)
            except ValidationError:  # unknown keys, or not even routable: the general way
                general = self._admit_general(seq, raw)
                if general is None:
                    continue
                item = general
            else:
                route = record.event
                if (route.integrations or not everything) and not wants(
                    record.source, route.kind, route.integrations
                ):
                    state.count("filtered")
                    state.finish(seq)
                    continue
                user = route.userId
                if not user or type(user) is not str:  # else it is the user key already
                    user = route.user_key
                size = len(raw)
                item = Item(
                    seq,
                    user,
                    record.source,
                    record.received_at,
                    raw,
                    None,
                    size + size // 4 + 2,  # estimate_json_size, inline: once per event
                )
            index = lane_of.get(item.user)
            if index is None:
                if len(lane_of) > LANE_CACHE:
                    lane_of.clear()
                index = lane_of[item.user] = lane_index(item.user, count)
            shares[index].append(item)
        for lane, share in zip(lanes, shares, strict=True):
            if share:
                lane.put_many(share)
        return last

    def _admit_general(self, seq: int, raw: bytes) -> Item | None:
        """An event with a key its model does not know, or whose routing fields do not
        match the model: filtered on its dict, then converted by ``event_from_dict`` (which
        keeps unknown keys in ``extra``, or gives the reason it is dead-lettered)."""
        state = self.state
        assert state is not None
        record = _decode_record(raw)
        event = record.event
        if not self.filter.wants(record.source, event):
            state.count("filtered")
            state.finish(seq)
            return None
        try:
            model = event_from_dict(event)
        except EventError as exc:
            now = now_us()
            state.dead_letter(
                seq,
                record.source,
                record.received_at,
                event,
                reason=f"stored event does not match the event model: {exc}",
                attempts=0,
                first=now,
                last=now,
            )
            state.finish(seq)
            return None
        return Item(
            seq,
            model.user_key,
            record.source,
            record.received_at,
            event,
            model,
            estimate_json_size(len(raw)),
        )

    def _observe_latency(self, seconds: float) -> None:
        self.latency.observe(seconds)
        if self.on_latency is not None:
            self.on_latency(seconds)

    async def _send(self, events: list[Event]) -> list[Outcome]:
        return await self.connector.send(events)

    # -- parked events and redrive -----------------------------------------------------

    def _load_pending(self, seq: int) -> PendingRecord | None:
        assert self.state is not None
        raw = self.state.get(RETRIES, event_key(self.id, seq))
        return None if raw is None else decode_pending(raw)

    def _load_parked(self, cursor: int) -> None:
        """Rebuild the per-user queues from the retry table (the schedule survives restarts)."""
        for _key, raw in self.log.items(RETRIES, event_prefix(self.id)):
            pending = decode_pending(raw)
            self._park_entry(pending, len(raw))
            if pending.seq >= cursor:
                self._skip.add(pending.seq)

    def _probe_parked(self) -> None:
        """After a restart, try the parked event due soonest at once instead of at its
        stored time (an operator often restarts after a fix); if it goes through, the
        destination counts as recovered and every parked event becomes due. The rest of
        the stored schedule stands."""
        lanes = [lane for lane in self.lanes if lane.parked.next_due() is not None]
        if not lanes:
            return
        lane = min(lanes, key=lambda ln: ln.parked.next_due() or 0)
        if lane.parked.probe(now_us()):
            self.health.failures = max(self.health.failures, 1)
            lane.poke()

    def _park_entry(self, pending: PendingRecord, size: int) -> None:
        park_record(self.lanes, pending, size)

    def _progress(self) -> None:
        """A lane finished a batch: the reader and the redrive may have room again."""
        self._room.set()
        self._redrive_room.set()

    async def _redrive_task(self) -> None:
        """Take up redrive requests (about once a second) and re-queue the dead letters of
        the redrive under way a chunk at a time, while the destination has room."""
        interval = self.settings.redrive_interval
        next_check = 0.0
        while True:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + interval
                self._take_request()
            if self._redriving and self._redrive_step():
                await asyncio.sleep(0)
                continue
            wait = max(0.0, next_check - time.monotonic())
            if self._redriving:  # waiting for room, or for the last chunk's commit
                wait = min(wait, COMMIT_INTERVAL)
            self._redrive_room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._redrive_room.wait(), wait)

    def _take_request(self) -> None:
        raw = self.log.get_value(DESTINATIONS, redrive_key(self.id))
        if raw is None:
            return
        request = decode_redrive(raw)
        self._start_redrive(request.requested_at, request.requested_by)
        assert self.state is not None
        self.state.stage(DESTINATIONS, redrive_key(self.id), None)
        _log.info(
            "destination %s: redriving the dead letters recorded up to %d (requested by %s)",
            self.id,
            request.requested_at,
            request.requested_by,
            extra=self.log_extra,
        )

    def _start_redrive(self, up_to: int, by: str) -> None:
        state = self.state
        assert state is not None
        self._redrive = progress = widen(self._redrive, up_to, by)
        state.stage(DESTINATIONS, redriving_key(self.id), encode(progress))
        state.touch()

    @property
    def _redriving(self) -> bool:
        return self._redrive is not None or bool(self._redriven)

    def _redrive_step(self) -> bool:
        """Park the chunk last re-queued once its commit has landed (so a redriven event
        is never sent before it left the dead letters for good), or re-queue the next one;
        False when waiting for that commit, or for room (the window full of parked
        events)."""
        state = self.state
        assert state is not None
        if not state.saved(DESTINATIONS, redriving_key(self.id)):
            return False
        if self._redriven:
            for pending, size in self._redriven:
                self._park_entry(pending, size)
            self._redriven = []
            return True
        progress = self._redrive
        limit = room(self.settings.window, self.pending)
        if progress is None or not limit:
            return False
        self._redriven, done = redrive_chunk(state, progress, limit)
        for pending, _size in self._redriven:
            if pending.seq >= self.read_pos:  # not read yet: the retry table has it
                self._skip.add(pending.seq)
        if done:
            self._redrive = None
            _log.info("destination %s: redrive done", self.id, extra=self.log_extra)
        return True

    def redrive(self) -> int:
        """Start re-queueing the dead letters recorded up to now as fresh events (in
        chunks as the destination has room, see _redrive.py); return how many dead letters
        there are now (counted from their keys). Durable with the next commit."""
        if self.state is None:
            raise RuntimeError(f"destination {self.id} is not running")
        if self._failed:
            raise StartError(
                f"destination {self.id!r} failed and is restarting; nothing redriven (try "
                "again once it runs, or `headwater dlq redrive` to have it done then)"
            )
        count = self.log.count(DEAD_LETTERS, event_prefix(self.id))
        self._start_redrive(now_us(), "api")
        self._redrive_room.set()
        return count

    def _recovered(self) -> None:
        now = now_us()
        for lane in self.lanes:
            lane.parked.make_due(now)
            lane.poke()

    # -- reporting ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(len(lane.parked) for lane in self.lanes)

    def oldest_pending_received(self) -> int | None:
        return min(
            (t for lane in self.lanes if (t := lane.parked.oldest_received()) is not None),
            default=None,
        )

    @property
    def in_flight(self) -> int:
        return sum(lane.in_flight for lane in self.lanes)

    def status(self) -> DestinationStatus:
        state = self.state
        if state is None:
            return read_status(self.log, self.id, connector=self.connector_name, state="starting")
        if self._failed:  # the durable cursor and retries, not the halted run's
            return read_status(
                self.log, self.id, connector=self.connector_name, record=state.record,
                state="failed",
            )  # fmt: skip
        held = self.limiter.held_for
        state.record.backoff_until = now_us() + int(held * 1e6) if held else 0
        return read_status(
            self.log,
            self.id,
            connector=self.connector_name,
            record=state.record,
            cursor=state.cursor,
            state="backing_off" if held else ("stopped" if self._stopping else "running"),
            pending=self.pending,
        )
