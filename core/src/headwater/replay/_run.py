"""One replay job at work: its own reader over the job's seq range, feeding the router's
lanes for the target destination.

The reader reads the range from the job's cursor in short read transactions, applies the
job's filter and the destination's, and hands events to ``Lane``s built exactly as the
destination's live loop builds them (same batching, per-user order, retry schedule, dead
letters, send timeout and destination-wide backoff), so a replayed event travels the same
path as a live one. What differs:

- it has its own lanes and connector instance, so live delivery to the same destination
  never waits behind history (and the other way round); when the destination is live in
  this process, both share its rate limiter, so its ``rate_limit`` and a ``Retry-After``
  hold apply to the sum of the two;
- its cursor and record are its own (``ReplayState``), its parked retries live under the
  job's namespace, while dead letters are the destination's;
- the reader is paced by the job's ``rate`` (events per second) and reads in small chunks,
  yielding the event loop between them, so ingestion and live delivery keep their latency;
- it ends: once every seq of the range is finished and nothing is parked, the job is done.

Its parked retries (those left by a stopped run, or every dead letter of a JetStream
redrive, see shared_replay._redrive) are loaded into the lanes in key (seq) order a chunk
at a time, only while fewer than a window are parked in memory (``router._redrive.room``,
as the LMDB redrive re-queues dead letters), so memory holds about a window of them
however many there are. The reader waits until the last of them is loaded: a user's
retry then always blocks that user's later events (per-user order), and every retry at or
past the cursor is in the skip set before the reader meets its seq. A retry leaves the
table only when its event is delivered or dead-lettered, as always.

Per-user order holds within the replay (as within live delivery); a user's live events may
reach the destination before that user's replayed history, as with Segment's replays.
Destinations that care order by the events' own timestamps, which replay keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from headwater_spec import Destination, Event, EventError, Outcome, event_from_dict

from ..log import AnyLog, LogClosedError, LogRecord, now_us
from ..router import (
    RETRIES,
    DeliverySettings,
    DestinationRecord,
    EventFilter,
    PendingRecord,
    RateLimiter,
    lane_index,
)
from ..router import estimate_json_size as estimate_size
from ..router._cancel import cancel_and_wait
from ..router._decode import decode_header, typed_event
from ..router._health import Health
from ..router._lane import Item, Lane, park_record
from ..router._records import decode_pending, event_key, event_prefix
from ..router._redrive import REDRIVE_CHUNK, room
from ..router._supervise import LoopTasks, RestartBackoff, describe, supervise
from ._filter import JobFilter
from ._pressure import LoopPressure
from ._records import REPLAYS, ReplayJob, cursor_name, decode_job, job_key, retry_namespace
from ._state import ReplayState

_log = logging.getLogger("headwater.replay")
_decode_record = msgspec.msgpack.Decoder(LogRecord).decode
READ_CHUNK = 256
"""Events admitted between two yields of the event loop: about a millisecond of work."""
MAX_BURST = 0.1
"""Seconds of ``rate`` the pacer lets through at once."""
MIN_CHUNK = 16
DRAIN_TIMEOUT = 10.0
"""Seconds a stopping job waits for its batches in flight before abandoning them."""
START_RATE = 20_000.0
"""Events per second an unpaced job starts at before the loop's lag says more is fine."""
MAX_RATE = 10_000_000.0
FLOOR_RATE = 1_000.0
"""The least a job sends per second however busy the loop is, so it always ends."""
ADJUST_EVERY = 0.02
LAG_HIGH = 0.005
LAG_LOW = 0.003
DECREASE = 0.7
INCREASE = 1.25
STEP = 500.0


class Pacer:
    """The reader's pace in events per second: the job's ``rate`` at most, and lower while
    the event loop is late (see _pressure.py); unpaced without either."""

    def __init__(self, rate: float | None, pressure: LoopPressure | None = None) -> None:
        self.cap = rate
        self.pressure = pressure
        self.current = rate if rate is not None else START_RATE
        self._next = time.monotonic()
        self._adjusted = self._next

    @property
    def paced(self) -> bool:
        return self.cap is not None or self.pressure is not None

    def chunk(self, default: int) -> int:
        if not self.paced:
            return default
        return max(MIN_CHUNK, min(default, int(self.current * MAX_BURST)))

    def _adjust(self, now: float) -> None:
        pressure = self.pressure
        if pressure is None or now - self._adjusted < ADJUST_EVERY:
            return
        self._adjusted = now
        ceiling = self.cap if self.cap is not None else MAX_RATE
        if pressure.lag > LAG_HIGH:
            self.current = max(min(FLOOR_RATE, ceiling), self.current * DECREASE)
        elif pressure.lag < LAG_LOW:
            self.current = min(ceiling, self.current * INCREASE + STEP)

    async def take(self, count: int) -> None:
        if count <= 0 or not self.paced:
            return
        now = time.monotonic()
        self._adjust(now)
        self._next = max(self._next, now - MAX_BURST) + count / self.current
        wait = self._next - now
        if wait > 0:
            await asyncio.sleep(wait)


class ReplayRun(LoopTasks):
    def __init__(
        self,
        log: AnyLog,
        job: ReplayJob,
        connector: Destination,
        *,
        destination_filter: EventFilter | None = None,
        settings: DeliverySettings | None = None,
        limiter: RateLimiter | None = None,
        on_done: Callable[[ReplayRun], None] | None = None,
        pressure: LoopPressure | None = None,
    ) -> None:
        self.log = log
        self.job = job
        self.connector = connector
        self.filter = destination_filter or EventFilter()
        self.job_filter = JobFilter(job.filter)
        self.settings = settings or DeliverySettings()
        self.limiter = limiter or RateLimiter(self.settings.rate_limit)
        self.health = Health(self.settings.policy, self.limiter, self._recovered)
        self.pacer = Pacer(job.rate, pressure)
        self.namespace = retry_namespace(job.id)
        self.on_done = on_done
        self.lanes: list[Lane] = []
        self.state: ReplayState | None = None
        self.read_pos = 0
        self._skip: set[int] = set()
        self._load_after: bytes | None = None
        """The last retry key loaded into the lanes (None: from the first)."""
        self._unloaded = 0
        """Retries of the job still only in the table (counted at start), 0 once all are
        loaded; the reader waits until then."""
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._committer: asyncio.Task[None] | None = None
        self._completion: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._pressure_held = False
        self.stopped = False
        self.failure: str | None = None
        """Why the run is halted, waiting to start again (None while it runs)."""
        self.restarts = RestartBackoff()
        self.label = f"replay {job.id}"
        self.log_extra: dict[str, Any] = {
            "fields": {"replay": job.id, "destination": job.destination}
        }

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the job's state and start its tasks; when that fails (the log cannot be
        read), the connector is closed and the error raised (the service tries again)."""
        try:
            await self._open()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.connector.close()
            raise
        if self.pacer.pressure is not None:
            self.pacer.pressure.acquire()
            self._pressure_held = True
        self._supervisor = asyncio.create_task(
            supervise(self), name=f"hw-replay-supervise-{self.job.id}"
        )

    async def _open(self) -> None:
        """Open the job's state from the log (cursor, parked retries) and start the tasks:
        at start, and again after a task failed (see router._supervise)."""
        job, log = self.job, self.log
        stored = log.get_cursor(cursor_name(job.id))
        cursor = stored if stored is not None else job.first_seq
        first = log.first_seq()
        if first and cursor < first:
            gone = min(first, job.last_seq + 1) - cursor
            if gone > 0:
                job.skipped += gone
                _log.warning(
                    "replay %s: events %d..%d are no longer in the log (retention); "
                    "continuing at %d",
                    job.id,
                    cursor,
                    cursor + gone - 1,
                    cursor + gone,
                    extra={"replay": job.id, "destination": job.destination},
                )
            cursor += max(gone, 0)
        if not job.started_at:
            job.started_at = now_us()
        job.state = "running"
        job.error = ""
        self.failure = None
        state = ReplayState(log, job, cursor)
        if stored != cursor:
            state.saved_cursor = -1
        self.state = state
        self.read_pos = cursor
        self._skip = set()
        self._load_after = None
        self._unloaded = await asyncio.to_thread(log.count, RETRIES, event_prefix(self.namespace))
        settings = self.settings
        self.lanes = [
            Lane(
                i,
                self.namespace,
                send=self._send,
                state=state,
                limiter=self.limiter,
                health=self.health,
                policy=settings.policy,
                limits=settings.limits,
                load_pending=self._load_pending,
                latency=lambda _seconds: None,
                send_timeout=settings.send_timeout,
                on_progress=self._room.set,
            )
            for i in range(max(1, settings.concurrency))
        ]
        state.pending_count = lambda: self.pending
        await self._load_parked()
        state.touch()
        await state.commit()
        self._committer = asyncio.create_task(state.run(), name=f"hw-replay-commit-{job.id}")
        self._tasks = [asyncio.create_task(self._read(), name=f"hw-replay-read-{job.id}")]
        self._tasks += [
            asyncio.create_task(lane.run(), name=f"hw-replay-lane-{job.id}-{lane.index}")
            for lane in self.lanes
        ]
        _log.info(
            "replay %s to %s: seqs %d..%d from %d (%d parked)",
            job.id,
            job.destination,
            job.first_seq,
            job.last_seq,
            cursor,
            self.pending,
            extra={"replay": job.id, "destination": job.destination},
        )

    async def stop(self, drain: float = DRAIN_TIMEOUT) -> None:
        """Stop reading, let the batches in flight finish (for up to ``drain`` seconds;
        after that they are abandoned and sent again when the job resumes) while no lane
        starts another (a lane that is always busy would otherwise go on sending for the
        whole ``drain``, past what the cursor records), save the job's
        state, close the connector. Events read but not yet sent stay behind the cursor
        and go out when the job resumes. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()  # first, so the tasks' ends below are not taken as failures
        reader, lanes = self._tasks[:1], list(zip(self.lanes, self._tasks[1:], strict=False))
        await cancel_and_wait(reader)
        for lane, _task in lanes:  # the batch in flight is the last one each lane sends
            lane.closing = True
        deadline = time.monotonic() + drain
        while lanes:
            busy = []
            for lane, task in lanes:
                if lane.in_flight and not task.done():
                    busy.append((lane, task))
                else:  # between batches: nothing is lost by stopping it here
                    task.cancel()
            lanes = busy
            if not lanes or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        await self.halt()
        if supervisor is not None:
            await cancel_and_wait([supervisor])
        if self._pressure_held and self.pacer.pressure is not None:
            self._pressure_held = False
            await self.pacer.pressure.release()
        state = self.state
        if state is not None:
            state.touch()
            try:
                if self.failure is not None:  # what is in memory is not to be trusted
                    await state.save_record()
                else:
                    await state.flush()
            except LogClosedError:
                _log.warning("replay %s: log closed before the last state was saved", self.job.id)
        with contextlib.suppress(Exception):
            await self.connector.close()

    # -- supervision (see router._supervise) --------------------------------------------

    def may_finish(self, task: asyncio.Task[None]) -> bool:
        return bool(self._tasks) and task is self._tasks[0]  # the reader, at the range's end

    async def failed(self, task: str, error: BaseException, retry_in: float) -> None:
        """Log the failure and keep it in the job (``error``) until the run starts again;
        the counters go back to what was last committed, as after a crash."""
        job = self.job
        connector = self.connector  # the error's text with the instance's secrets masked
        text = connector.spec.redactor(connector.config)(describe(error))
        self.failure = f"delivery task {task} failed ({text}); restarting"
        if self.state is not None:  # the commit the cancelled committer had in flight
            await self.state.landed()
        raw = self.log.get_value(REPLAYS, job_key(job.id))
        if raw is not None:
            committed = decode_job(raw)
            job.delivered, job.retried = committed.delivered, committed.retried
            job.dead_lettered, job.filtered = committed.dead_lettered, committed.filtered
            job.skipped, job.pending = committed.skipped, committed.pending
        job.error = self.failure
        _log.error(
            "replay %s to %s: %s in %g s",
            job.id,
            job.destination,
            self.failure,
            retry_in,
            exc_info=error,
            extra=self.log_extra,
        )
        if self.state is not None:
            self.state.record = DestinationRecord(
                delivered=job.delivered,
                retried=job.retried,
                dead_lettered=job.dead_lettered,
                filtered=job.filtered,
                state="failed",
            )
            await self.state.save_record()

    async def reopen(self) -> None:
        await self._open()

    # -- reading -----------------------------------------------------------------------

    async def _read(self) -> None:
        state = self.state
        assert state is not None
        job = self.job
        window = self.settings.window
        while True:
            if self._unloaded:
                await self._load_parked()
                if self._unloaded:
                    await self._wait_for_room()
                    continue
            if self.read_pos > job.last_seq:
                if state.cursor > job.last_seq and not self.pending:
                    self._completion = asyncio.create_task(self._complete())
                    return
                await self._wait_for_room()
                continue
            limit = state.watermark.low + window - 1
            if self.read_pos > limit:
                await self._wait_for_room()
                continue
            end = min(limit, job.last_seq, self.read_pos + self.pacer.chunk(READ_CHUNK) - 1)
            admitted, last = self._admit_chunk(self.read_pos, end)
            if last:
                self.read_pos = last + 1
            else:
                self._skip_missing(end)
            await self.pacer.take(admitted)
            await asyncio.sleep(0)

    async def _wait_for_room(self) -> None:
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), 0.5)

    def _skip_missing(self, end: int) -> None:
        """Nothing at ``read_pos..end``: trimmed by retention while the job ran."""
        state = self.state
        assert state is not None
        first = self.log.first_seq()
        upto = min(end, first - 1) if first > self.read_pos else end
        for seq in range(self.read_pos, upto + 1):
            state.finish(seq)
        self.job.skipped += upto - self.read_pos + 1
        self.read_pos = upto + 1

    def _admit_chunk(self, start: int, end: int) -> tuple[int, int]:
        """Read seqs ``start..end`` and hand each wanted event to its user's lane, each
        lane's share in one go; return (events handed over, last seq read). Events are
        decoded straight into their models as the router does (``router._decode``), the
        general path only for unknown keys or invalid events."""
        state = self.state
        assert state is not None
        skip = self._skip
        job_wants = None if self.job_filter.everything else self.job_filter.wants_event
        wants = self.filter.wants_event
        lanes = self.lanes
        count = len(lanes)
        shares: dict[int, list[Item]] = {}
        last = 0
        for seq, raw in self.log.scan_raw(start, end):
            last = seq
            if skip and seq in skip:  # parked before a restart; the retry table has it
                skip.discard(seq)
                state.finish(seq)
                continue
            header = decode_header(raw)
            model = typed_event(header.event)
            if model is None:
                item = self._admit_general(seq, raw)
                if item is None:
                    continue
            elif (job_wants is not None and not job_wants(header.source, model)) or not wants(
                header.source, model
            ):
                state.count("filtered")
                state.finish(seq)
                continue
            else:
                item = Item(
                    seq,
                    model.user_key,
                    header.source,
                    header.received_at,
                    raw,
                    model,
                    estimate_size(len(raw)),
                )
            index = lane_index(item.user, count) if count > 1 else 0
            share = shares.get(index)
            if share is None:
                shares[index] = [item]
            else:
                share.append(item)
        admitted = 0
        for index, items in shares.items():
            lanes[index].put_many(items)
            admitted += len(items)
        return admitted, last

    def _admit_general(self, seq: int, raw: bytes) -> Item | None:
        """An event the fast decode left alone: filtered on its dict, then validated by
        ``event_from_dict`` (an invalid one becomes the destination's dead letter)."""
        state = self.state
        assert state is not None
        record = _decode_record(raw)
        event, source = record.event, record.source
        if not self.job_filter.wants(source, event) or not self.filter.wants(source, event):
            state.count("filtered")
            state.finish(seq)
            return None
        try:
            model = event_from_dict(event)
        except EventError as exc:
            now = now_us()
            state.dead_letter(
                seq,
                source,
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
            seq, model.user_key, source, record.received_at, event, model, estimate_size(len(raw))
        )

    async def _send(self, events: list[Event]) -> list[Outcome]:
        return await self.connector.send(events)

    async def _complete(self) -> None:
        job = self.job
        job.state = "done"
        job.finished_at = now_us()
        await self.stop()
        _log.info(
            "replay %s to %s done: %d delivered, %d filtered, %d dead-lettered, %d skipped",
            job.id,
            job.destination,
            job.delivered,
            job.filtered,
            job.dead_lettered,
            job.skipped,
            extra={"replay": job.id, "destination": job.destination},
        )
        if self.on_done is not None:
            self.on_done(self)

    # -- parked events -----------------------------------------------------------------

    def _load_pending(self, seq: int) -> PendingRecord | None:
        assert self.state is not None
        raw = self.state.get(RETRIES, event_key(self.namespace, seq))
        return None if raw is None else decode_pending(raw)

    async def _load_parked(self) -> None:
        """Park the job's next retries from the table, in key order, while fewer than a
        window are parked (see the module docstring). Only retries past ``_load_after``
        are read: those before are in the lanes already, or finished (the lanes write
        retries only for events they hold, and the reader waits until all are loaded).
        Pages are read in a worker thread: on JetStream a page reads every key of the
        table, which would hold up the event loop (ingestion, live delivery)."""
        window = self.settings.window
        while self._unloaded:
            parked = self.parked
            limit = room(window, parked)
            if limit < min(REDRIVE_CHUNK, window) // 2 and parked:
                return  # a page only once there is room for a good part of a chunk
            rows = await asyncio.to_thread(
                self.log.page,
                RETRIES,
                event_prefix(self.namespace),
                after=self._load_after,
                limit=limit,
            )
            for _key, raw in rows:
                pending = decode_pending(raw)
                park_record(self.lanes, pending, len(raw))
                if pending.seq >= self.read_pos:  # not read yet: the table has it
                    self._skip.add(pending.seq)
            if len(rows) < limit:
                self._unloaded = 0
            else:
                self._load_after = rows[-1][0]
                self._unloaded = max(1, self._unloaded - len(rows))

    def _recovered(self) -> None:
        now = now_us()
        for lane in self.lanes:
            lane.parked.make_due(now)
            lane.poke()

    # -- reporting ---------------------------------------------------------------------

    @property
    def parked(self) -> int:
        """Parked events in memory (in the lanes)."""
        return sum(len(lane.parked) for lane in self.lanes)

    @property
    def pending(self) -> int:
        """Parked events of the job: in memory, and still only in the table."""
        return self.parked + self._unloaded

    @property
    def cursor(self) -> int:
        state = self.state
        if state is not None:
            return state.cursor
        stored = self.log.get_cursor(cursor_name(self.job.id))
        return stored if stored is not None else self.job.first_seq

    def backing_off(self) -> float:
        return self.limiter.held_for


def parked_keys(log: AnyLog, job_id: str) -> list[bytes]:
    """The job's entries in the retry table (deleted when the job is cancelled)."""
    return [key for key, _ in log.items(RETRIES, event_prefix(retry_namespace(job_id)))]


__all__ = ["Pacer", "ReplayRun", "parked_keys"]
