"""The embedded event log on LMDB, with group commit.

Appends from any number of concurrent callers are gathered while the previous commit is
in flight and written together: one write transaction and one fsync per group. A caller's
future resolves only after the transaction holding its events is committed and synced.
The commit runs on a dedicated writer thread; LMDB releases the GIL while it syncs, so the
event loop keeps serving requests meanwhile.

Each event is encoded to msgpack in the caller's thread (the event loop) when it is
appended, and the writer thread only frames it with its sequence and time (``msgspec.Raw``
is copied, not re-encoded). That keeps the writer's hold on the GIL short, so the fsync of
one group overlaps the decoding of the next requests; see benchmarks/bench_log_append.py.

Several processes may open the same log: LMDB serialises their write transactions and
readers never block. The next sequence is therefore read inside every write transaction;
only the decoding of the tail record's time is skipped when the tail is the one this
process wrote last.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any

import lmdb
import msgspec

from ._clock import iso_us as iso_us  # re-exported: older imports name this module
from ._clock import now_us as now_us
from ._derived import CURSORS as CURSORS  # re-exported: the table name lives with its users
from ._derived import DerivedLogMethods
from ._disk import free_bytes, is_disk_full
from ._errors import LogClosedError, LogError, LogFullError
from ._records import (
    AppendResult,
    LogRecord,
    LogStats,
    RecordHeader,
    RejectedItem,
    key_seq,
    seq_key,
    seq_keys,
)

FORMAT_VERSION = b"1"
EVENTS = b"events"
REJECTED = b"rejected"

META = b"meta"
SIDE_TABLES = (b"dead_letters", b"checkpoints", b"replays", b"retries", b"destinations")
MAX_TABLES = 32
DEFAULT_MAP_SIZE = 1 << 30
SCAN_CHUNK = 1024
TRIM_BATCH = 2000

_encoder = msgspec.msgpack.Encoder()
_RECORD_PREFIX = b"\x94\xcf"
"""msgpack: an array of 4 items, the first a uint64 (followed by the 8-byte key)."""
_record_decoder = msgspec.msgpack.Decoder(LogRecord)
_header_decoder = msgspec.msgpack.Decoder(RecordHeader)
_rejected_decoder = msgspec.msgpack.Decoder(RejectedItem)


SideOp = tuple[bytes, bytes, bytes | None]
"""(table, key, value) to put, or (table, key, None) to delete, in a side table."""


class _Pending:
    """One caller's share of a group: its events already encoded, and its future."""

    __slots__ = ("events", "future", "rejected", "side_ops", "source")

    def __init__(
        self,
        source: str,
        events: list[bytes],
        rejected: Sequence[RejectedItem],
        side_ops: Sequence[SideOp],
        future: asyncio.Future[AppendResult] | None,
    ) -> None:
        self.source = source
        self.events = events
        self.rejected = rejected
        self.side_ops = side_ops
        self.future = future


def _encode_events(events: Sequence[dict[str, Any]]) -> list[bytes]:
    return list(map(_encoder.encode, events))


class LmdbLog(DerivedLogMethods):
    """The event log in ``<data_dir>/log``. Safe to open from several processes at once
    (one writer at a time, readers never block); ``readonly`` opens for inspection.

    ``map_size`` is the initial LMDB map; when it fills, the map doubles (up to
    ``max_size`` when given) unless ``grow`` is False. An append that cannot fit raises
    LogFullError and writes nothing.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        grow: bool = True,
        max_size: int | None = None,
        readonly: bool = False,
        sync: bool = True,
    ) -> None:
        self.path = Path(data_dir) / "log"
        self.readonly = readonly
        self._grow = grow
        self._max_size = max_size
        if max_size is not None:
            map_size = min(map_size, max_size)
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not (self.path / "data.mdb").exists():
            raise LogError(f"no event log at {self.path}; run `headwater serve` or `import` first")
        try:
            self.env = lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=MAX_TABLES,
                readonly=readonly,
                sync=sync,
                metasync=sync,
                writemap=False,
                map_async=False,
                readahead=False,
                max_readers=256,
                lock=True,
            )
        except lmdb.Error as exc:
            raise LogError(f"cannot open the event log at {self.path}: {exc}") from None
        self._dbs: dict[bytes, Any] = {}
        self._readers = 0
        self._resizing = False
        self._gate = threading.Condition()
        self._write_lock = threading.Lock()
        self._last_received = 0
        self._tail: tuple[int, int] | None = None
        self._pending: list[_Pending] = []
        self._closing = False
        self._closed = False
        self._writer: ThreadPoolExecutor | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self.commits = 0
        """Write transactions committed by this process (group commits and side writes)."""
        self.committed_events = 0
        """Events appended by this process; with ``commits``, the mean group size."""
        self._commit_listeners: list[Callable[[int], None]] = []
        if readonly:
            for name in (EVENTS, REJECTED, CURSORS, META, *SIDE_TABLES):
                try:
                    self._dbs[name] = self.env.open_db(name, create=False)
                except lmdb.NotFoundError:
                    self._dbs[name] = None
        else:
            try:
                self._write(self._prepare)
            except BaseException:
                self.env.close()
                raise

    def _prepare(self, txn: Any) -> None:
        for name in (EVENTS, REJECTED, CURSORS, META, *SIDE_TABLES):
            self._dbs[name] = self.env.open_db(name, txn=txn)
        meta = self._dbs[META]
        stored = txn.get(b"format_version", db=meta)
        if stored is None:
            txn.put(b"format_version", FORMAT_VERSION, db=meta)
            txn.put(b"created_at", str(now_us()).encode(), db=meta)
        elif bytes(stored) != FORMAT_VERSION:
            raise LogError(
                f"{self.path} has log format {bytes(stored).decode()}, this build reads "
                f"{FORMAT_VERSION.decode()}; open it with the Headwater version that wrote it"
            )

    # -- reading -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A read transaction that a map resize in this process waits for."""
        for attempt in range(2):
            with self._gate:
                while self._resizing:
                    self._gate.wait()
                self._readers += 1
            try:
                txn = self.env.begin(buffers=True)
            except lmdb.MapResizedError:
                txn = None
                if attempt:
                    self._release_reader()
                    raise
            except BaseException:
                self._release_reader()
                raise
            if txn is None:
                # Another process grew the map; adopt its size once no reader of ours runs.
                self._release_reader()
                self._resize(0)
                continue
            try:
                yield txn
            finally:
                txn.abort()
                self._release_reader()
            return

    def _release_reader(self) -> None:
        with self._gate:
            self._readers -= 1
            self._gate.notify_all()

    def _db(self, name: bytes) -> Any:
        return self._dbs[name]

    def last_seq(self) -> int:
        db = self._db(EVENTS)
        if db is None:
            return 0
        with self._read() as txn, txn.cursor(db=db) as cur:
            return key_seq(cur.key()) if cur.last() else 0

    def first_seq(self) -> int:
        db = self._db(EVENTS)
        if db is None:
            return 0
        with self._read() as txn, txn.cursor(db=db) as cur:
            return key_seq(cur.key()) if cur.first() else 0

    def get(self, seq: int) -> LogRecord | None:
        db = self._db(EVENTS)
        if db is None:
            return None
        with self._read() as txn:
            raw = txn.get(seq_key(seq), db=db)
            return None if raw is None else _record_decoder.decode(raw)

    def scan_raw(
        self, start_seq: int = 1, end_seq: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """(seq, msgpack bytes) pairs, read in chunks of short transactions so a slow
        consumer never pins old pages nor holds up a map resize."""
        db = self._db(EVENTS)
        if db is None:
            return
        next_seq = max(start_seq, 1)
        while True:
            chunk: list[tuple[int, bytes]] = []
            with self._read() as txn, txn.cursor(db=db) as cur:
                if not cur.set_range(seq_key(next_seq)):
                    return
                for key, value in cur:
                    seq = key_seq(key)
                    if end_seq is not None and seq > end_seq:
                        break
                    chunk.append((seq, bytes(value)))
                    if len(chunk) >= SCAN_CHUNK:
                        break
            if not chunk:
                return
            yield from chunk
            next_seq = chunk[-1][0] + 1
            if len(chunk) < SCAN_CHUNK:
                return

    def _received_at(self, txn: Any, seq: int) -> int | None:
        raw = txn.get(seq_key(seq), db=self._db(EVENTS))
        return None if raw is None else _header_decoder.decode(raw).received_at

    def seq_at_time(self, received_at_us: int) -> int:
        """The first sequence received at or after the time (last_seq + 1 when none).

        Bisects the dense sequence range on the commit time, which never decreases."""
        db = self._db(EVENTS)
        if db is None:
            return 1
        with self._read() as txn, txn.cursor(db=db) as cur:
            if not cur.first():
                return 1
            lo = key_seq(cur.key())
            cur.last()
            hi = key_seq(cur.key()) + 1
            while lo < hi:
                mid = (lo + hi) // 2
                at = self._received_at(txn, mid)
                if at is None or at < received_at_us:
                    lo = mid + 1
                else:
                    hi = mid
            return lo

    def rejected(self, limit: int | None = None) -> Iterator[tuple[int, RejectedItem]]:
        """Rejected items in arrival order (read in one short transaction, then yielded)."""
        db = self._db(REJECTED)
        if db is None:
            return iter(())
        out: list[tuple[int, RejectedItem]] = []
        with self._read() as txn, txn.cursor(db=db) as cur:
            for key, value in cur:
                if limit is not None and len(out) >= limit:
                    break
                out.append((key_seq(key), _rejected_decoder.decode(value)))
        return iter(out)

    def stats(self) -> LogStats:
        """Counts, ranges and bytes on disk, from one read transaction (never blocks a writer)."""
        events_db, rejected_db = self._db(EVENTS), self._db(REJECTED)
        with self._read() as txn:
            count = txn.stat(events_db)["entries"] if events_db is not None else 0
            n_rejected = txn.stat(rejected_db)["entries"] if rejected_db is not None else 0
            first = last = None
            first_time = last_time = None
            if count:
                with txn.cursor(db=events_db) as cur:
                    cur.first()
                    head = _header_decoder.decode(cur.value())
                    first, first_time = head.seq, iso_us(head.received_at)
                    cur.last()
                    tail = _header_decoder.decode(cur.value())
                    last, last_time = tail.seq, iso_us(tail.received_at)
        return LogStats(
            events=count,
            first_seq=first,
            last_seq=last,
            first_time=first_time,
            last_time=last_time,
            bytes=self.disk_bytes(),
            rejected=n_rejected,
        )

    def events_bytes(self) -> int:
        """Bytes the events table's pages take inside the data file (what retention by
        size measures: the file itself never shrinks, LMDB reuses freed pages)."""
        db = self._db(EVENTS)
        if db is None:
            return 0
        with self._read() as txn:
            stat = txn.stat(db)
        pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
        return int(pages * stat["psize"])

    def trim(self, up_to_seq: int, *, batch: int = TRIM_BATCH) -> int:
        """Delete the events with ``seq <= up_to_seq``, oldest first, for retention; return
        how many. Each transaction deletes at most ``batch`` keys and is durable on its
        own, so appends wait for one short transaction at a time. The newest event is
        never deleted: the next sequence number is read from it. Readers are unaffected
        (their transactions keep the pages they see); scans skip what is gone."""
        events_db = self._db(EVENTS)
        if events_db is None:
            return 0
        deleted = 0
        done = [0]

        def apply(txn: Any) -> None:
            done[0] = 0
            with txn.cursor(db=events_db) as cur:
                if not cur.last():
                    return
                limit = min(up_to_seq, key_seq(cur.key()) - 1)
                if not cur.first():
                    return
                while done[0] < batch:
                    key = cur.key()
                    if not key or key_seq(key) > limit or not cur.delete():
                        return
                    done[0] += 1

        while True:
            self._write(apply)
            deleted += done[0]
            if done[0] < batch:
                return deleted

    def disk_bytes(self) -> int:
        """Bytes the data file occupies on disk (allocated blocks, as `du` counts them)."""
        st = os.stat(self.path / "data.mdb")
        blocks = getattr(st, "st_blocks", None)
        return blocks * 512 if blocks is not None else st.st_size

    # -- cursors and side tables --------------------------------------------------------

    def get_value(self, table: bytes, key: bytes) -> bytes | None:
        db = self._db(table)
        if db is None:
            return None
        with self._read() as txn:
            raw = txn.get(key, db=db)
            return None if raw is None else bytes(raw)

    def items(self, table: bytes, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        return self.page(table, prefix, limit=1 << 62)

    def count(self, table: bytes, prefix: bytes = b"") -> int:
        db = self._db(table)
        if db is None:
            return 0
        n = 0
        size = len(prefix)
        with self._read() as txn:
            if not prefix:
                return int(txn.stat(db)["entries"])
            with txn.cursor(db=db) as cur:
                if not cur.set_range(prefix):
                    return 0
                for key in cur.iternext(keys=True, values=False):
                    if key[:size] != prefix:
                        break
                    n += 1
        return n

    def page(
        self, table: bytes, prefix: bytes = b"", *, after: bytes | None = None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        db = self._db(table)
        out: list[tuple[bytes, bytes]] = []
        if db is None or limit <= 0:
            return out
        start = prefix if after is None or after < prefix else after
        with self._read() as txn, txn.cursor(db=db) as cur:
            if not cur.set_range(start):
                return out
            for key, value in cur:
                k = bytes(key)
                if not k.startswith(prefix):
                    break
                if after is not None and k <= after:
                    continue
                out.append((k, bytes(value)))
                if len(out) >= limit:
                    break
        return out

    def write_batch(self, ops: Sequence[tuple[bytes, bytes, bytes | None]]) -> None:
        """Put (value) or delete (None) side-table keys in one durable transaction."""

        def apply(txn: Any) -> None:
            self._apply_side_ops(txn, ops)

        self._write(apply)

    def _apply_side_ops(self, txn: Any, ops: Sequence[SideOp]) -> None:
        for table, key, value in ops:
            db = self._dbs.get(table)
            if db is None:
                raise LogError(f"no side table {table!r}; the tables are {self._table_names()}")
            if value is None:
                txn.delete(key, db=db)
            else:
                txn.put(key, value, db=db)

    def _table_names(self) -> str:
        return ", ".join(name.decode() for name in self._dbs)

    # -- appending -----------------------------------------------------------------------

    async def append(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[SideOp] = (),
    ) -> AppendResult:
        """Append ``events`` (and ``rejected`` items, and side-table writes such as a source
        checkpoint) in the next group commit; return once it is synced to disk.

        Raises LogFullError when the log cannot hold them (nothing of the group is written),
        LogClosedError once ``aclose``/``close`` has begun, OverflowError (before anything
        is queued) for an integer msgpack cannot carry.

        The events are encoded before this awaits and not kept. Callers under load should
        not keep them either (pass the list straight in, or ``del`` it first, or use
        ``submit``): thousands of decoded events kept alive across each commit cost about
        half the throughput in benchmarks/bench_log_append.py."""
        future = self.submit(source, events, rejected, side_ops)
        del events  # the decoded dicts can go now; only their msgpack waits for the commit
        return await future

    def submit(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[SideOp] = (),
    ) -> asyncio.Future[AppendResult]:
        """``append`` in two steps: encode and queue now (raising as ``append`` does), and
        return the future of the commit. Once it returns, the caller can drop the decoded
        events before it awaits the commit (the ingest path does: measured ~15% less CPU
        per event with 32 requests waiting on each fsync)."""
        if self._closing:
            raise LogClosedError("the log is shutting down")
        encoded = _encode_events(events)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._pending.append(_Pending(source, encoded, rejected, side_ops, future))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        """Commit whatever is pending, group after group, until nothing is."""
        loop = asyncio.get_running_loop()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="headwater-log-writer")
        while self._pending:
            group, self._pending = self._pending, []
            if self._closed or self._writer is None:  # close() ran under our feet
                for item in group:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(LogClosedError("the log was closed"))
                continue
            try:
                results = await loop.run_in_executor(self._writer, self._commit_group, group)
            except BaseException as exc:  # every waiter of the group learns the failure
                for item in group:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(
                            exc if isinstance(exc, Exception) else LogClosedError(str(exc))
                        )
                if not isinstance(exc, Exception):
                    raise
                continue
            for item, result in zip(group, results, strict=True):
                if item.future is not None and not item.future.done():
                    item.future.set_result(result)
            self._notify_commit(results)

    def add_commit_listener(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call ``listener(last_seq)`` after each commit of this process that appended
        events (on the event loop for ``append``, on the caller's thread for
        ``append_sync``), so a reader such as the router tails the log without polling.
        Returns a function that removes the listener. Must not block or raise."""
        self._commit_listeners.append(listener)

        def remove() -> None:
            if listener in self._commit_listeners:
                self._commit_listeners.remove(listener)

        return remove

    def _notify_commit(self, results: Sequence[AppendResult]) -> None:
        last = max((r.last_seq for r in results if r.count), default=0)
        if last:
            for listener in list(self._commit_listeners):
                listener(last)

    def append_sync(
        self,
        source: str,
        events: Sequence[dict[str, Any]],
        rejected: Sequence[RejectedItem] = (),
        side_ops: Sequence[SideOp] = (),
    ) -> AppendResult:
        """The blocking form of ``append`` for tools without an event loop."""
        if self._closing:
            raise LogClosedError("the log is closed")
        item = _Pending(source, _encode_events(events), rejected, side_ops, None)
        result = self._commit_group([item])[0]
        self._notify_commit((result,))
        return result

    def _commit_group(self, group: Sequence[_Pending]) -> list[AppendResult]:
        results: list[AppendResult] = []
        committed: list[tuple[int, int]] = []

        def apply(txn: Any) -> None:
            results.clear()
            committed.clear()
            events_db, rejected_db = self._db(EVENTS), self._db(REJECTED)
            with txn.cursor(db=events_db) as cur:
                if cur.last():
                    tail_seq = key_seq(cur.key())
                    tail = self._tail
                    if tail is not None and tail[0] == tail_seq:
                        last_at = tail[1]
                    else:  # first commit, or another process appended since ours
                        last_at = _header_decoder.decode(cur.value()).received_at
                else:
                    tail_seq, last_at = 0, 0
            seq = tail_seq + 1
            received_at = max(now_us(), last_at, self._last_received)
            rseq = 1
            if any(item.rejected for item in group):
                with txn.cursor(db=rejected_db) as cur:
                    rseq = key_seq(cur.key()) + 1 if cur.last() else 1
            rows: list[tuple[bytes, bytes]] = []
            rejected_rows: list[tuple[bytes, bytes]] = []
            encode = _encoder.encode
            stamp = encode(received_at)
            for item in group:
                first = seq
                # A record is the msgpack array [seq, source, received_at, event]; the seq is
                # written as a uint64 (0xcf + 8 bytes big-endian), which is exactly its key.
                # Built by map/zip, without Python bytecode per event (the writer holds the
                # GIL meanwhile).
                middle = encode(item.source) + stamp
                keys = seq_keys(seq, len(item.events))
                parts = zip(repeat(_RECORD_PREFIX), keys, repeat(middle), item.events)
                rows.extend(zip(keys, map(b"".join, parts), strict=True))
                seq += len(keys)
                for bad in item.rejected:
                    rejected_rows.append((seq_key(rseq), encode(bad)))
                    rseq += 1
                results.append(AppendResult(first, seq - 1, received_at, len(item.rejected)))
                if item.side_ops:
                    self._apply_side_ops(txn, item.side_ops)
            if rows:
                with txn.cursor(db=events_db) as cur:
                    cur.putmulti(rows, append=True)
            if rejected_rows:
                with txn.cursor(db=rejected_db) as cur:
                    cur.putmulti(rejected_rows, append=True)
            committed.append((seq - 1, received_at))

        self._write(apply)
        last, received_at = committed[0]
        self._last_received = received_at
        if last > 0:
            self._tail = (last, received_at)
        self.committed_events += sum(len(item.events) for item in group)
        return results

    def _write(self, apply: Callable[[Any], None]) -> None:
        """Run ``apply(txn)`` in one synced write transaction, growing the map when full.

        A failed transaction is aborted whole, so a failed append leaves nothing behind."""
        if self.readonly:
            raise LogError("the log was opened read-only")
        with self._write_lock:
            while True:
                try:
                    self._run_write_txn(apply)
                    self.commits += 1
                    return
                except lmdb.MapFullError:
                    self._grow_map()
                except lmdb.MapResizedError:
                    self._resize(0)  # another process grew the map; adopt its size
                except lmdb.Error as exc:
                    if is_disk_full(exc, self.path):
                        raise LogFullError(
                            f"the disk holding {self.path} is full ({free_bytes(self.path)} "
                            "bytes free); nothing of this append was written. Free space or "
                            "move the data dir, then retry"
                        ) from None
                    raise LogError(f"log write failed at {self.path}: {exc}") from exc

    def _grow_map(self) -> None:
        current = self.env.info()["map_size"]
        if not self._grow:
            raise LogFullError(
                f"the log at {self.path} filled its map of {current} bytes and growth is "
                "disabled; nothing of this append was written. Open it with a larger map_size"
            )
        if self._max_size is not None and current >= self._max_size:
            raise LogFullError(
                f"the log at {self.path} reached its maximum size ({self._max_size} bytes); "
                "nothing of this append was written. Raise [log] max_size or free space"
            )
        target = current * 2
        if self._max_size is not None:
            target = min(target, self._max_size)
        self._resize(target)

    def _run_write_txn(self, apply: Callable[[Any], None]) -> None:
        """One write transaction: committed when ``apply`` returns, aborted when it raises.

        py-lmdb 3 makes a write abort wait until no LMDB call of this process is in
        flight; with readers scanning back to back that wait could starve forever (seen
        as a hung append after MAP_FULL). So the abort runs with new readers held off."""
        txn = self.env.begin(write=True)
        try:
            apply(txn)
        except BaseException:
            self._exclusive(txn.abort)
            raise
        txn.commit()

    def _resize(self, size: int) -> None:
        """Set the map size (0: adopt the size another process set) once no read
        transaction of this process is open, as LMDB requires."""
        self._exclusive(lambda: self.env.set_mapsize(size))

    def _exclusive(self, action: Callable[[], object]) -> None:
        """Run ``action`` once every read transaction of this process has ended, holding
        new ones back meanwhile."""
        with self._gate:
            while self._resizing:
                self._gate.wait()
            self._resizing = True
            try:
                while self._readers:
                    self._gate.wait()
                action()
            finally:
                self._resizing = False
                self._gate.notify_all()

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Refuse new appends, wait for the groups in flight, close."""
        self._closing = True
        task = self._drain_task
        if task is not None and not task.done():
            await asyncio.shield(task)
        self.close()

    def close(self) -> None:
        self._closing = True
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self.env.close()

    def __enter__(self) -> LmdbLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
