"""PostgreSQL connectors: rows/s read by postgres-source, events/s written by
postgres-warehouse, each beside plain COPY on the same server in the same run.

What is measured (the local server, 127.0.0.1:5432, database `test`; a schema of its own,
dropped at the end):

Reading a table of ``BENCH_ROWS`` users (id, email, plan, a numeric, a timestamptz),
indexed on (updated_at, id), in cursor order:

- **source**: ``PostgresSource.read_pass`` from scratch, fetch_size 1000, into a context that
  drops the events: rows -> Identify events with deterministic messageIds, and checkpoints.
- **source into the log**: the same, into the daemon's real context on an LMDB log, every
  chunk of events and its checkpoint committed with fsync (what `headwater serve` does).
- **raw COPY**: ``COPY (SELECT ... ORDER BY updated_at, id) TO STDOUT`` read to the end:
  the fastest the server hands the same rows over (bytes, nothing decoded). The raw limit.
- **driver fetch**: the server-side cursor alone (psycopg decoding rows into Python values,
  no mapping): the floor of any Python reader, to show where the rest of the time goes.

Writing ``BENCH_ROWS`` track events (6 properties, context with library/ip/user agent, fresh
messageIds each round) in batches of 5,000 (the spec's max_batch), each batch committed:

- **warehouse**: ``PostgresWarehouse.send`` from 4 concurrent senders, as the router's 4
  default delivery lanes call it (and from 1): flatten, type, binary COPY into the staging
  table, ``INSERT ... ON CONFLICT (message_id) DO NOTHING`` into ``tracks``.
- **raw COPY**: binary ``COPY ... FROM STDIN`` of the same rows, already flattened into
  tuples, straight into an identical table (same columns, same primary key), each batch
  committed. The raw limit of getting these rows into such a table.
- **replay**: ``send`` of batches already loaded (every row a conflict): the cost of a replay.

Printed: figures per round and the median of each paired ratio (target >= 0.5 of COPY).

Measured on the 2-core development VM while other work shared it (single figures swing a
lot, the paired ratios less), 100k rows:

    source (events dropped)          60-83k rows/s
    source into the LMDB log         27-60k rows/s
    driver fetch (psycopg alone)    710-910k rows/s
    raw COPY TO                     0.7-1.3M rows/s    source / COPY 0.06-0.10 (target 0.5: no)
    warehouse, 4 lanes (1 lane)      27-48k (28-48k) events/s
    raw COPY FROM, same table       110-235k rows/s    warehouse / COPY 0.17-0.26 (no)
    replay (all conflicts)           42-55k events/s

The target is not met, and cannot be with this shape. The source spends ~12 us per row in
Python making an event (the messageId's SHA-1 ~1.3 us, ISO timestamps ~1 us each, the
property dict, the Struct) while COPY hands a row over in ~1 us; even the driver alone,
decoding rows into Python values, reaches only ~0.75 of COPY. Doing the mapping in SQL (the
server building each event's JSON, msgspec decoding it) was measured at ~125k rows/s: the
server then spends ~4.5 us per row on JSON, so it gains less than 2x while moving type
conversions out of Python's control; not taken. For the warehouse, profiling led to
converting values per column instead of per value, caching flattened column names per
object shape, binary COPY into the staging table and typing values outside the lock (so
lanes overlap): 20k -> 41-48k events/s. What is left: ~9 us per event of Python
(flattening ~4, typing ~4, COPY framing ~1) and the staging design, which writes each row
twice (staging, then the indexed, WAL-logged table) -- the price of ON CONFLICT, which COPY
lacks (measured alone: staging ~1.7 us + INSERT ... SELECT ~10 us per row against ~9 us
for COPY into the same table).

Run: ``uv run nox -s bench`` or ``uv run python benchmarks/bench_postgres.py``.
Environment: ``BENCH_ROWS`` (default 100000), ``BENCH_ROUNDS`` (3),
``HEADWATER_TEST_POSTGRES`` (the dsn, default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from headwater.daemon import InstanceContext, Metrics
from headwater.log import LmdbLog
from headwater_postgres import PostgresSource, PostgresWarehouse
from headwater_postgres._warehouse_rows import RowBuilder
from headwater_spec import Event, Track

DSN = os.environ.get("HEADWATER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH = 5000
SCHEMA = f"hw_bench_{uuid.uuid4().hex[:8]}"


class Context:
    """Where a host would keep the events; here they are dropped (only counted)."""

    def __init__(self) -> None:
        self.instance_id = "bench"
        self.region = "eu"
        self.endpoint = None
        self.data_dir = Path(".")
        self.logger = logging.getLogger("bench")
        self.events = 0

    async def emit(self, events: Sequence[Event]) -> None:
        self.events += len(events)

    async def load_checkpoint(self) -> bytes | None:
        return None

    async def save_checkpoint(self, value: bytes) -> None:
        pass

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        self.events += len(events)


def source_config() -> dict[str, Any]:
    return {
        "dsn": DSN,
        "schema": SCHEMA,
        "table": "users",
        "cursor_column": "updated_at",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        "fetch_size": 1000,
    }


def setup() -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text, plan text, "
            "score numeric(10,2), updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO users SELECT g, 'user' || g || '@example.com', "
            "CASE WHEN g %% 3 = 0 THEN 'pro' ELSE 'free' END, g / 7.0, "
            "timestamptz '2024-01-01 00:00:00+00' + (g / 50) * interval '1 second' "
            "FROM generate_series(1, %s) g",
            [ROWS],
        )
        conn.execute("CREATE INDEX ON users (updated_at, id)")
        conn.execute("VACUUM ANALYZE users")


def teardown() -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))


async def time_source() -> float:
    source = PostgresSource(source_config(), Context())
    ctx = Context()
    started = time.perf_counter()
    await source.read_pass(ctx, None)
    elapsed = time.perf_counter() - started
    await source.close()
    assert ctx.events == ROWS, ctx.events
    return ROWS / elapsed


async def time_source_into_log() -> float:
    folder = Path(tempfile.mkdtemp(prefix="hw-bench-pg-"))
    log = LmdbLog(folder)
    try:
        ctx = InstanceContext(
            instance_id="bench", region="eu", data_dir=folder, log=log, metrics=Metrics()
        )
        source = PostgresSource(source_config(), ctx)
        started = time.perf_counter()
        await source.read_pass(ctx, None)
        elapsed = time.perf_counter() - started
        await source.close()
        assert log.last_seq() == ROWS
        return ROWS / elapsed
    finally:
        await log.aclose()
        shutil.rmtree(folder, ignore_errors=True)


async def time_copy_out() -> float:
    """Blocking psycopg, the fastest way it reads COPY data (the async iterator costs more)."""
    query = sql.SQL("COPY (SELECT * FROM {} ORDER BY updated_at, id) TO STDOUT").format(
        sql.Identifier(SCHEMA, "users")
    )
    with psycopg.connect(DSN) as conn:
        started = time.perf_counter()
        size = 0
        with conn.cursor() as cur, cur.copy(query) as copy:
            for data in copy:
                size += len(data)
        elapsed = time.perf_counter() - started
    assert size > ROWS * 20
    return ROWS / elapsed


async def time_driver_fetch() -> float:
    query = sql.SQL("SELECT * FROM {} ORDER BY updated_at, id").format(
        sql.Identifier(SCHEMA, "users")
    )
    async with await psycopg.AsyncConnection.connect(DSN, options="-c TimeZone=UTC") as conn:
        started = time.perf_counter()
        rows = 0
        async with conn.transaction(), conn.cursor(name="bench") as cur:
            await cur.execute(query)
            while chunk := await cur.fetchmany(1000):
                rows += len(chunk)
        elapsed = time.perf_counter() - started
    assert rows == ROWS
    return ROWS / elapsed


def track_events(round_no: int) -> list[Event]:
    agents = ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)"]
    return [
        Track(
            messageId=f"r{round_no}-{uuid.uuid4()}",
            userId=f"user-{i % 5000}",
            event="Order Completed",
            timestamp="2024-05-01T10:00:00.000Z",
            receivedAt="2024-05-01T10:00:01.250Z",
            context={
                "library": {"name": "analytics-python", "version": "2.3.2"},
                "ip": "203.0.113.9",
                "userAgent": agents[i % 2],
            },
            properties={
                "order_id": f"o-{round_no}-{i}",
                "revenue": 19.99 + i % 10,
                "currency": "EUR",
                "items": 1 + i % 4,
                "coupon": None if i % 3 else "SPRING",
                "first_order": i % 7 == 0,
            },
        )
        for i in range(ROWS)
    ]


async def time_warehouse(
    events: list[Event], lanes: int, *, replay: bool = True
) -> tuple[float, float]:
    """(events/s of a first load, events/s of sending the same again or 0), with ``lanes``
    concurrent senders as the router's delivery lanes are (its default is 4)."""
    destination = PostgresWarehouse(
        {"dsn": DSN, "schema": SCHEMA + "_wh"},
        Context(),
    )
    batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]

    async def lane(mine: list[list[Event]]) -> None:
        for batch in mine:
            outcomes = await destination.send(batch)
            assert all(type(o).__name__ == "Delivered" for o in outcomes), outcomes[:1]

    figures = [0.0, 0.0]
    for n in range(2 if replay else 1):
        started = time.perf_counter()
        await asyncio.gather(*(lane(batches[n::lanes]) for n in range(lanes)))
        figures[n] = len(events) / (time.perf_counter() - started)
    await destination.close()
    return figures[0], figures[1]


async def time_copy_in(events: list[Event], round_no: int) -> float:
    """Binary COPY of the same rows, pre-flattened, into a table like `tracks`."""
    builder = RowBuilder(flatten=True, track_tables=False)
    flat = [builder.rows(e)[0][2] for e in events]
    columns = list(dict.fromkeys(k for row in flat[:100] for k in row))
    types = {
        "timestamp": "timestamptz",
        "received_at": "timestamptz",
        "revenue": "float8",
        "items": "int8",
        "first_order": "bool",
    }
    copy_types = [types.get(c, "text") for c in columns]
    when = {"timestamp": datetime(2024, 5, 1, 10, tzinfo=UTC)}
    when["received_at"] = datetime(2024, 5, 1, 10, 0, 1, 250000, tzinfo=UTC)
    tuples = [tuple(when.get(c, row.get(c)) for c in columns) for row in flat]
    table = sql.Identifier(SCHEMA + "_wh", f"copy_target_{round_no}")
    idents = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    async with await psycopg.AsyncConnection.connect(DSN) as conn:
        await conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                table, sql.Identifier(SCHEMA + "_wh", "tracks")
            )
        )
        await conn.commit()
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, idents)
        started = time.perf_counter()
        for i in range(0, len(tuples), BATCH):
            async with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                copy.set_types(copy_types)
                for row in tuples[i : i + BATCH]:
                    await copy.write_row(row)
        elapsed = time.perf_counter() - started
    return len(tuples) / elapsed


async def main() -> None:
    print(f"PostgreSQL connectors, {ROWS:,} rows, {ROUNDS} rounds; {DSN.split('@')[-1]}")
    setup()
    try:
        await time_source()  # warm the server's cache and the code paths
        await time_warehouse(track_events(-1)[:BATCH], 1, replay=False)
        read: list[tuple[float, ...]] = []
        write: list[tuple[float, ...]] = []
        for n in range(ROUNDS):
            source = await time_source()
            logged = await time_source_into_log()
            copy_out = await time_copy_out()
            fetch = await time_driver_fetch()
            read.append((source, logged, copy_out, fetch))
            print(
                f"  read  round {n + 1}: source {source:>9,.0f} rows/s | into log "
                f"{logged:>9,.0f} | raw COPY {copy_out:>11,.0f} | driver fetch {fetch:>9,.0f}"
            )
            events = track_events(n)
            warehouse, replay = await time_warehouse(events, 4)
            single, _ = await time_warehouse(track_events(n + 1000), 1, replay=False)
            copy_in = await time_copy_in(events, n)
            write.append((warehouse, copy_in, replay, single))
            print(
                f"  write round {n + 1}: warehouse {warehouse:>7,.0f} events/s (1 lane "
                f"{single:>7,.0f}) | raw COPY {copy_in:>9,.0f} rows/s | replay "
                f"{replay:>9,.0f} events/s"
            )
    finally:
        teardown()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA + "_wh"))
            )
    med = statistics.median
    source_ratio = med(r[0] / r[2] for r in read)
    logged_ratio = med(r[1] / r[2] for r in read)
    fetch_ratio = med(r[3] / r[2] for r in read)
    write_ratio = med(w[0] / w[1] for w in write)
    single_ratio = med(w[3] / w[1] for w in write)
    replay_ratio = med(w[2] / w[1] for w in write)
    print("medians of paired ratios (target >= 0.5):")
    print(f"  source / raw COPY out            {source_ratio:.2f}")
    print(f"  source into the log / raw COPY   {logged_ratio:.2f}")
    print(f"  driver fetch / raw COPY out      {fetch_ratio:.2f}  (any Python reader's ceiling)")
    print(f"  warehouse, 4 lanes / raw COPY in {write_ratio:.2f}")
    print(f"  warehouse, 1 lane / raw COPY in  {single_ratio:.2f}")
    print(f"  replay / raw COPY in             {replay_ratio:.2f}")
    met = source_ratio >= 0.5 and write_ratio >= 0.5
    print(f"target met: {'yes' if met else 'no'}")


if __name__ == "__main__":
    asyncio.run(main())
