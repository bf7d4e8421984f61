"""postgres-source against the real server: incremental reads, ties, crashes, mapping."""

from __future__ import annotations

import tracemalloc
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from postgres_testkit import HostContext, MemorySourceContext, SourceCrash

from headwater_postgres import PostgresSource
from headwater_postgres._checkpoint import decode_checkpoint
from headwater_postgres._row_events import NAMESPACE, message_id
from headwater_spec import Event, Identify, Track

pytestmark = pytest.mark.timeout(120)


def make_users(pg: psycopg.Connection[Any], rows: int, *, per_second: int = 1000) -> None:
    """``rows`` users; ``per_second`` of them share each updated_at value (ties)."""
    pg.execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, plan text, score numeric(10,2), "
        "updated_at timestamptz NOT NULL)"
    )
    pg.execute(
        "INSERT INTO users SELECT g, 'u' || g || '@example.com', "
        "CASE WHEN g %% 3 = 0 THEN 'pro' ELSE 'free' END, g / 7.0, "
        "timestamptz '2024-01-01 00:00:00+00' + (g / %s) * interval '1 second' "
        "FROM generate_series(1, %s) g",
        [per_second, rows],
    )
    pg.execute("CREATE INDEX ON users (updated_at, id)")


def identify_config(dsn: str, schema: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "dsn": dsn,
        "schema": schema,
        "table": "users",
        "cursor_column": "updated_at",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        "fetch_size": 1000,
        "poll_interval": 0.05,
    }
    config.update(extra)
    return config


def user_ids(events: Sequence[Event]) -> list[str]:
    return [str(e.userId) for e in events]


async def test_100k_rows_read_once_in_order_then_new_and_updated_rows_arrive_once(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    make_users(pg, 100_000, per_second=1000)
    # fetch_size 700 ends most fetches in the middle of 1,000 rows sharing a timestamp.
    config = identify_config(postgres_dsn, pg_schema, fetch_size=700)
    source = PostgresSource(config, HostContext("crm"))
    ctx = MemorySourceContext("crm")
    checkpoint = await source.read_pass(ctx, None)

    assert len(ctx.events) == 100_000
    assert user_ids(ctx.events) == [str(i) for i in range(1, 100_001)]
    first_ids = {e.messageId for e in ctx.events}
    assert len(first_ids) == 100_000
    assert ctx.commits == 143  # ceil(100000 / 700): events and checkpoint move together
    assert checkpoint is not None and checkpoint.keys == ("100000",)
    first = ctx.events[0]
    assert isinstance(first, Identify)
    assert first.traits == {
        "email": "u1@example.com",
        "plan": "free",
        "score": 0.14,
        "updated_at": "2024-01-01T00:00:00.000Z",
    }
    assert first.timestamp == "2024-01-01T00:00:00.000Z"
    assert first.context["library"]["name"] == "headwater-postgres"

    pg.execute(
        "INSERT INTO users SELECT g, 'n' || g || '@example.com', 'free', 0, "
        "timestamptz '2024-06-01 00:00:00+00' FROM generate_series(100001, 100050) g"
    )
    pg.execute(
        "UPDATE users SET plan = 'enterprise', updated_at = timestamptz '2024-06-01 00:00:00+00' "
        "WHERE id BETWEEN 500 AND 529"
    )
    checkpoint = await source.read_pass(ctx, checkpoint)
    fresh = ctx.events[100_000:]
    assert sorted(int(u) for u in user_ids(fresh)) == [*range(500, 530), *range(100001, 100051)]
    assert not {e.messageId for e in fresh} & first_ids
    updated = [e for e in fresh if isinstance(e, Identify) and int(str(e.userId)) < 1000]
    assert {e.traits["plan"] for e in updated} == {"enterprise"}

    await source.read_pass(ctx, checkpoint)
    await source.close()
    assert len(ctx.events) == 100_080


@pytest.mark.parametrize("crash_after", [1, 37, 99])
async def test_crash_mid_read_resumes_without_gaps_or_duplicates(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any], crash_after: int
) -> None:
    make_users(pg, 20_000, per_second=450)
    config = identify_config(postgres_dsn, pg_schema, fetch_size=200)
    ctx = MemorySourceContext("crm", crash_after=crash_after)
    crashed = PostgresSource(config, HostContext("crm"))
    with pytest.raises(SourceCrash):
        await crashed.read_pass(ctx, None)
    await crashed.close()
    assert len(ctx.events) == crash_after * 200

    # A new process: a new source instance that starts from the stored checkpoint.
    ctx.crash_after = None
    restarted = PostgresSource(config, HostContext("crm"))
    stored = decode_checkpoint(await ctx.load_checkpoint(), restarted.options, who="test")
    await restarted.read_pass(ctx, stored)
    await restarted.close()

    assert user_ids(ctx.events) == [str(i) for i in range(1, 20_001)]
    assert not [m for m, n in Counter(e.messageId for e in ctx.events).items() if n > 1]


async def test_rows_sharing_one_cursor_value_are_all_read_across_restarts(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    pg.execute("CREATE TABLE users (id text, email text, updated_at timestamp NOT NULL)")
    pg.execute(
        "INSERT INTO users SELECT 'k' || g, NULL, timestamp '2024-01-01 12:00:00' "
        "FROM generate_series(1, 10) g"
    )
    config = identify_config(postgres_dsn, pg_schema, fetch_size=3)
    ctx = MemorySourceContext("crm", crash_after=2)
    with pytest.raises(SourceCrash):
        await PostgresSource(config, HostContext("crm")).read_pass(ctx, None)
    ctx.crash_after = None
    source = PostgresSource(config, HostContext("crm"))
    await source.read_pass(ctx, decode_checkpoint(ctx.checkpoint, source.options, who="t"))
    await source.close()
    assert sorted(user_ids(ctx.events)) == sorted(f"k{i}" for i in range(1, 11))


async def test_message_id_is_a_uuid5_of_source_key_and_cursor_and_repeats_on_reread(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    make_users(pg, 50)
    config = identify_config(postgres_dsn, pg_schema)
    first, second, other = (MemorySourceContext(n) for n in ("crm", "crm", "crm-eu"))
    for ctx in (first, second, other):
        source = PostgresSource(config, HostContext(ctx.instance_id))
        await source.read_pass(ctx, None)
        await source.close()
    assert [e.messageId for e in first.events] == [e.messageId for e in second.events]
    assert not {e.messageId for e in first.events} & {e.messageId for e in other.events}
    expected = uuid.uuid5(NAMESPACE, "crm\x1f1\x1f2024-01-01T00:00:00+00:00")
    assert first.events[0].messageId == str(expected)
    assert message_id("crm", ["1"], "2024-01-01T00:00:00+00:00") == str(expected)


async def test_track_rows_take_name_properties_and_timestamp_from_columns(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    pg.execute(
        "CREATE TABLE orders (id serial PRIMARY KEY, customer text, anon uuid, kind text, "
        "total numeric(12,2), items int, tags text[], placed_at timestamp, note text)"
    )
    pg.execute(
        "INSERT INTO orders (customer, anon, kind, total, items, tags, placed_at, note) VALUES "
        "('c1', NULL, 'Order Completed', 19.99, 2, '{a,b}', '2024-03-01 10:00:00.123456', 'x'),"
        "(NULL, '6f1e8a52-93a5-4a6e-9d3c-1df3b1b6a0f1', 'Order Refunded', 5, 1, NULL, "
        "'2024-03-02 10:00:00', NULL),"
        "(NULL, NULL, 'Order Completed', 1, 1, NULL, '2024-03-03 10:00:00', NULL),"
        "('c4', NULL, NULL, 1, 1, NULL, '2024-03-04 10:00:00', NULL)"
    )
    config = {
        "dsn": postgres_dsn,
        "schema": pg_schema,
        "table": "orders",
        "cursor_column": "id",
        "key_columns": ["id"],
        "event_type": "track",
        "event_column": "kind",
        "user_id_column": "customer",
        "anonymous_id_column": "anon",
        "timestamp_column": "placed_at",
        "property_columns": ["total", "items", "tags"],
    }
    source = PostgresSource(config, HostContext("shop"))
    ctx = MemorySourceContext("shop")
    await source.read_pass(ctx, None)
    await source.close()
    # Row 3 has no user and row 4 no event name: both skipped, counted.
    assert len(ctx.events) == 2
    completed, refunded = ctx.events
    assert isinstance(completed, Track) and isinstance(refunded, Track)
    assert completed.event == "Order Completed" and completed.userId == "c1"
    assert completed.properties == {"total": 19.99, "items": 2, "tags": ["a", "b"]}
    assert completed.timestamp == "2024-03-01T10:00:00.123456Z"
    assert refunded.anonymousId == "6f1e8a52-93a5-4a6e-9d3c-1df3b1b6a0f1"
    assert refunded.userId is None and refunded.properties["total"] == 5
    assert source.rows_read == 4 and source.events_emitted == 2


async def test_query_with_percent_signs_and_a_trailing_semicolon_is_wrapped_intact(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    make_users(pg, 30)
    config = identify_config(
        postgres_dsn,
        pg_schema,
        table=None,
        query="SELECT id, email, updated_at FROM users WHERE email LIKE 'u1%';  ",
    )
    del config["table"]
    source = PostgresSource({**config, "event_type": "track", "event": "Seen"}, HostContext("q"))
    ctx = MemorySourceContext("q")
    await source.read_pass(ctx, None)
    await source.close()
    assert sorted(int(u) for u in user_ids(ctx.events)) == [1, *range(10, 20)]
    assert all(isinstance(e, Track) and e.event == "Seen" for e in ctx.events)


async def test_table_columns_always_include_the_cursor_key_and_mapped_columns(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    make_users(pg, 5)
    config = identify_config(postgres_dsn, pg_schema, columns=["email"])
    source = PostgresSource(config, HostContext("crm"))
    ctx = MemorySourceContext("crm")
    await source.read_pass(ctx, None)
    await source.close()
    assert isinstance(ctx.events[0], Identify)
    assert set(ctx.events[0].traits) == {"email", "updated_at"}


async def test_composite_key_breaks_ties_in_order(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    pg.execute(
        "CREATE TABLE memberships (org int, member int, version bigint NOT NULL, "
        "PRIMARY KEY (org, member))"
    )
    pg.execute(
        "INSERT INTO memberships SELECT o, m, 1 FROM generate_series(1, 5) o, "
        "generate_series(1, 5) m"
    )
    config = {
        "dsn": postgres_dsn,
        "schema": pg_schema,
        "table": "memberships",
        "cursor_column": "version",
        "key_columns": ["org", "member"],
        "event_type": "identify",
        "user_id_column": "member",
        "fetch_size": 4,
    }
    ctx = MemorySourceContext("m", crash_after=3)
    with pytest.raises(SourceCrash):
        await PostgresSource(config, HostContext("m")).read_pass(ctx, None)
    ctx.crash_after = None
    source = PostgresSource(config, HostContext("m"))
    await source.read_pass(ctx, decode_checkpoint(ctx.checkpoint, source.options, who="t"))
    await source.close()
    pairs = [(e.traits["org"], e.userId) for e in ctx.events if isinstance(e, Identify)]
    assert pairs == [(o, str(m)) for o in range(1, 6) for m in range(1, 6)]


class CountingContext(MemorySourceContext):
    """Keeps only a count, as the real log keeps events on disk and not in memory."""

    def __init__(self) -> None:
        super().__init__("flat")
        self.count = 0

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        self.count += len(events)
        self.checkpoint = value


async def test_memory_stays_flat_while_reading_many_rows(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    pg.execute("CREATE TABLE wide (id bigint PRIMARY KEY, payload text)")
    pg.execute("INSERT INTO wide SELECT g, repeat('x', 1000) FROM generate_series(1, 30000) g")
    config = {
        "dsn": postgres_dsn,
        "schema": pg_schema,
        "table": "wide",
        "cursor_column": "id",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        "fetch_size": 200,
    }
    source = PostgresSource(config, HostContext("flat"))
    ctx = CountingContext()
    tracemalloc.start()
    try:
        await source.read_pass(ctx, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await source.close()
    assert ctx.count == 30_000
    # The result is 30 MB; a client-side cursor would hold all of it. 200 rows are ~0.3 MB.
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"
