"""postgres-warehouse against the real server: tables, columns, types, replays, failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from postgres_testkit import HostContext

from headwater_postgres import PostgresWarehouse, _warehouse_load
from headwater_spec import (
    Alias,
    Delivered,
    Event,
    Group,
    Identify,
    Page,
    Rejected,
    Retry,
    Screen,
    Track,
)

pytestmark = pytest.mark.timeout(60)

Make = Callable[..., PostgresWarehouse]


@pytest.fixture
async def make(postgres_dsn: str, pg_schema: str) -> AsyncIterator[Make]:
    made: list[PostgresWarehouse] = []

    def build(instance: str = "wh", **config: Any) -> PostgresWarehouse:
        destination = PostgresWarehouse(
            {"dsn": postgres_dsn, "schema": pg_schema, **config}, HostContext(instance)
        )
        made.append(destination)
        return destination

    yield build
    for destination in made:
        await destination.close()


def track(event: str = "Order Completed", user: str = "u1", **properties: Any) -> Track:
    return Track(
        messageId=str(uuid.uuid4()),
        userId=user,
        event=event,
        timestamp="2024-05-01T10:00:00.000Z",
        receivedAt="2024-05-01T10:00:01.500Z",
        context={"ip": "203.0.113.9", "library": {"name": "analytics.js", "version": "5.0"}},
        properties=properties,
    )


def rows(pg: psycopg.Connection[Any], query: str) -> list[dict[str, Any]]:
    cur = pg.execute(query)
    assert cur.description is not None
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def column_types(pg: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    return dict(
        pg.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            [schema, table],
        ).fetchall()
    )


def delivered(outcomes: list[Any]) -> bool:
    return all(isinstance(o, Delivered) for o in outcomes)


async def test_each_event_type_lands_in_its_table_with_common_and_flattened_columns(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    context = {"page": {"url": "https://example.com/a"}, "userAgent": "Mozilla/5.0"}
    events: list[Event] = [
        track(revenue=19.99, currency="EUR", items=2, shipping={"method": "dhl", "days": 3}),
        Identify(messageId="m-id", userId="u1", traits={"email": "a@example.com", "age": 41}),
        Page(
            messageId="m-pg",
            anonymousId="a1",
            name="Home",
            context=context,
            properties={"path": "/a", "referrer": ""},
        ),
        Screen(
            messageId="m-sc", userId="u1", name="Settings", category="App", properties={"tab": 2}
        ),
        Group(messageId="m-gr", userId="u1", groupId="g9", traits={"plan": "pro"}),
        Alias(messageId="m-al", userId="u1", previousId="a1"),
    ]
    assert delivered(await make().send(events))

    (order,) = rows(pg, "SELECT * FROM tracks")
    assert order["event"] == "Order Completed" and order["user_id"] == "u1"
    assert order["revenue"] == 19.99 and order["items"] == 2 and order["currency"] == "EUR"
    assert order["shipping_method"] == "dhl" and order["shipping_days"] == 3
    assert order["context_ip"] == "203.0.113.9"
    assert order["context_library_name"] == "analytics.js"
    assert order["timestamp"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert order["received_at"].isoformat() == "2024-05-01T10:00:01.500000+00:00"
    assert order["loaded_at"] is not None and order["_conflicts"] is None
    types = column_types(pg, pg_schema, "tracks")
    assert types["revenue"] == "double precision" and types["items"] == "bigint"
    assert types["timestamp"] == "timestamp with time zone" and types["event"] == "text"

    assert rows(pg, "SELECT user_id, email, age FROM identifies") == [
        {"user_id": "u1", "email": "a@example.com", "age": 41}
    ]
    assert rows(
        pg,
        "SELECT anonymous_id, name, path, referrer, context_page_url, "
        "context_user_agent FROM pages",
    ) == [
        {
            "anonymous_id": "a1",
            "name": "Home",
            "path": "/a",
            "referrer": "",
            "context_page_url": "https://example.com/a",
            "context_user_agent": "Mozilla/5.0",
        }
    ]
    assert rows(pg, "SELECT name, category, tab FROM screens") == [
        {"name": "Settings", "category": "App", "tab": 2}
    ]
    assert rows(pg, "SELECT group_id, plan FROM groups") == [{"group_id": "g9", "plan": "pro"}]
    assert rows(pg, "SELECT user_id, previous_id FROM aliases") == [
        {"user_id": "u1", "previous_id": "a1"}
    ]


async def test_a_replayed_batch_adds_no_rows(make: Make, pg: psycopg.Connection[Any]) -> None:
    batch = [track(order_id=f"o{i}") for i in range(300)]
    batch.append(batch[0])  # the same messageId twice within one batch, too
    destination = make()
    assert delivered(await destination.send(batch))
    assert destination.rows_inserted == 300
    assert delivered(await destination.send(batch[100:200]))
    assert delivered(await make("another-instance").send(batch))
    assert pg.execute("SELECT count(*) FROM tracks").fetchone() == (300,)
    assert destination.rows_inserted == 300


async def test_rows_another_writer_stored_are_not_duplicated_whichever_path_loads_them(
    make: Make, pg: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is copied straight into the table; when some of it is there already (another
    daemon stored it) the primary key stops the COPY and the batch lands through ON
    CONFLICT; the next batches ask first what is stored, and if that check misses a row
    stored just after it, the COPY fails again and ON CONFLICT still lands the batch once."""
    batch = [track(order_id=f"o{i}") for i in range(100)]
    other = make("other-daemon")
    assert delivered(await other.send(batch[::3]))
    destination = make()
    assert delivered(await destination.send([track(order_id="warm-up")]))
    assert delivered(await destination.send([*batch, batch[1]]))
    assert destination.rows_inserted == 1 + 66
    assert delivered(await destination.send(batch))  # asks first: nothing left to copy
    assert destination.rows_inserted == 1 + 66

    async def sees_nothing(
        conn: Any, target: Any, at: int, values: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...]]:
        return values

    monkeypatch.setattr(_warehouse_load, "_not_stored", sees_nothing)
    fresh = [track(order_id=f"n{i}") for i in range(5)]
    assert delivered(await destination.send([*batch[:10], *fresh]))
    assert destination.rows_inserted == 1 + 66 + 5
    assert pg.execute("SELECT count(*), count(DISTINCT message_id) FROM tracks").fetchone() == (
        106,
        106,
    )


async def test_a_fresh_batch_ends_the_replay_checks_even_with_a_repeated_message_id(
    make: Make, pg: psycopg.Connection[Any]
) -> None:
    """After a conflict the table's batches ask first what is stored, until one finds
    nothing stored; a messageId repeated within that batch does not keep it asking."""
    batch = [track(order_id=f"o{i}") for i in range(10)]
    destination = make()
    assert delivered(await destination.send(batch))
    assert delivered(await destination.send(batch))  # a replay: the COPY conflicts
    loader = destination.loader
    assert "tracks" in loader.replaying
    fresh = [track(order_id=f"n{i}") for i in range(5)]
    assert delivered(await destination.send([*fresh, fresh[0]]))
    assert "tracks" not in loader.replaying
    assert pg.execute("SELECT count(*) FROM tracks").fetchone() == (15,)


async def test_an_event_without_message_id_gets_a_stable_one_and_is_not_duplicated(
    make: Make, pg: psycopg.Connection[Any]
) -> None:
    event = Identify(userId="u7", traits={"plan": "free"})
    destination = make()
    assert delivered(await destination.send([event]))
    assert delivered(await destination.send([event]))
    ((message_id,),) = pg.execute("SELECT message_id FROM identifies").fetchall()
    assert message_id.startswith("hw-")


async def test_a_new_property_adds_a_column_and_older_rows_read_null(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make()
    assert delivered(await destination.send([track(order_id="o1")]))
    assert "coupon" not in column_types(pg, pg_schema, "tracks")
    assert delivered(await destination.send([track(order_id="o2", coupon="SPRING", discount=5)]))
    types = column_types(pg, pg_schema, "tracks")
    assert types["coupon"] == "text" and types["discount"] == "bigint"
    assert rows(pg, "SELECT order_id, coupon, discount FROM tracks ORDER BY order_id") == [
        {"order_id": "o1", "coupon": None, "discount": None},
        {"order_id": "o2", "coupon": "SPRING", "discount": 5},
    ]


async def test_a_type_conflict_keeps_the_column_and_moves_the_value_to_conflicts(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make()
    assert delivered(await destination.send([track(order_id="o1", items=3, gift=True)]))
    conflicting = track(order_id="o2", items="three", gift="yes", when="soon")
    conflicting.timestamp = "not a time"
    assert delivered(await destination.send([conflicting]))
    types = column_types(pg, pg_schema, "tracks")
    assert types["items"] == "bigint" and types["gift"] == "boolean"
    assert types["timestamp"] == "timestamp with time zone"
    got = rows(
        pg,
        "SELECT order_id, items, gift, timestamp IS NULL AS no_time, _conflicts "
        "FROM tracks ORDER BY order_id",
    )
    assert got == [
        {"order_id": "o1", "items": 3, "gift": True, "no_time": False, "_conflicts": None},
        {
            "order_id": "o2",
            "items": None,
            "gift": None,
            "no_time": True,
            "_conflicts": {"items": "three", "gift": "yes", "timestamp": "not a time"},
        },
    ]
    # A text column takes a number as its JSON text: no conflict there.
    assert delivered(await destination.send([track(order_id=7, when=5)]))
    assert rows(pg, "SELECT \"when\", _conflicts FROM tracks WHERE order_id = '7'") == [
        {"when": "5", "_conflicts": None}
    ]


async def test_an_integer_column_widens_to_double_when_a_fraction_arrives(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make()
    assert delivered(await destination.send([track(order_id="o1", price=10)]))
    assert column_types(pg, pg_schema, "tracks")["price"] == "bigint"
    assert delivered(await destination.send([track(order_id="o2", price=10.5)]))
    assert column_types(pg, pg_schema, "tracks")["price"] == "double precision"
    assert delivered(await destination.send([track(order_id="o3", price=2**70)]))
    assert rows(pg, "SELECT order_id, price FROM tracks ORDER BY order_id") == [
        {"order_id": "o1", "price": 10.0},
        {"order_id": "o2", "price": 10.5},
        {"order_id": "o3", "price": float(2**70)},
    ]
    # A fresh column seeing an integer and a fraction in one batch starts as double.
    assert delivered(await destination.send([track(qty=1), track(qty=1.5)]))
    assert column_types(pg, pg_schema, "tracks")["qty"] == "double precision"


async def test_flatten_false_keeps_properties_traits_and_context_as_jsonb(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make(flatten=False)
    nested = {"cart": {"items": [{"sku": "a"}], "total": 3.5}, "nul": "a\x00b"}
    batch: list[Event] = [
        track(**nested),
        Identify(messageId="i1", userId="u1", traits={"email": "a@example.com"}),
    ]
    assert delivered(await destination.send(batch))
    (row,) = rows(pg, "SELECT properties, context FROM tracks")
    # jsonb cannot hold NUL characters: they are dropped.
    assert row["properties"] == {"cart": {"items": [{"sku": "a"}], "total": 3.5}, "nul": "ab"}
    assert row["context"]["library"]["name"] == "analytics.js"
    assert rows(pg, "SELECT traits FROM identifies") == [{"traits": {"email": "a@example.com"}}]
    assert "cart_total" not in column_types(pg, pg_schema, "tracks")


async def test_track_tables_get_their_properties_and_tracks_keeps_one_row_per_track(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make(track_tables=["Order Completed", "tracks"])
    batch = [
        track("Order Completed", order_id="o1", total=9),
        track("Signed Up", plan="pro"),
        track("tracks", weird=True),
    ]
    assert delivered(await destination.send(batch))
    assert rows(pg, "SELECT event, order_id, total, context_ip FROM order_completed") == [
        {"event": "Order Completed", "order_id": "o1", "total": 9, "context_ip": "203.0.113.9"}
    ]
    assert rows(pg, "SELECT weird FROM track_tracks") == [{"weird": True}]
    tracks = column_types(pg, pg_schema, "tracks")
    assert "order_id" not in tracks and "weird" not in tracks and tracks["plan"] == "text"
    assert [r["event"] for r in rows(pg, "SELECT event FROM tracks ORDER BY event")] == [
        "Order Completed",
        "Signed Up",
        "tracks",
    ]
    assert delivered(await make(track_tables=True).send([track("Product Viewed", sku="x")]))
    assert rows(pg, "SELECT sku FROM product_viewed") == [{"sku": "x"}]


async def test_keys_are_snake_cased_and_clashes_with_fixed_columns_are_prefixed(
    make: Make, pg: psycopg.Connection[Any]
) -> None:
    event = track(
        **{
            "orderId": "o1",
            "Page URL": "/x",
            "user_id": "spoof",
            "timestamp": "t",
            "context_x": 1,
            "_private": 2,
            "9lives": 3,
            "a" * 80: 4,
            "nul": "a\x00b",
        }
    )
    assert delivered(await make().send([event]))
    (row,) = rows(pg, "SELECT * FROM tracks")
    assert row["order_id"] == "o1" and row["page_url"] == "/x"
    assert row["user_id"] == "u1" and row["property_user_id"] == "spoof"
    assert row["property_timestamp"] == "t" and row["property_context_x"] == 1
    assert row["private"] == 2 and row["_9lives"] == 3 and row["nul"] == "ab"
    long_names = [k for k in row if k.startswith("aaaa")]
    assert len(long_names) == 1 and len(long_names[0]) == 63


async def test_concurrent_lanes_and_two_instances_adding_the_same_columns_all_land(
    make: Make, pg: psycopg.Connection[Any]
) -> None:
    first, second = make("wh-1"), make("wh-2")
    batches = [
        [track(user=f"u{lane}", order_id=f"{lane}-{i}", **{f"p{i % 7}": i}) for i in range(50)]
        for lane in range(6)
    ]
    results = await asyncio.gather(
        *(dest.send(batch) for dest, batch in zip([first, second] * 3, batches, strict=True))
    )
    assert all(delivered(outcomes) for outcomes in results)
    assert pg.execute("SELECT count(*) FROM tracks").fetchone() == (300,)


async def test_a_row_the_database_refuses_is_rejected_alone_and_the_rest_delivered(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make()
    assert delivered(await destination.send([track(order_id="seed")]))
    pg.execute("ALTER TABLE tracks ADD CONSTRAINT no_blocked CHECK (user_id <> 'blocked')")
    batch = [track(user="blocked" if i in (3, 17) else "ok", order_id=str(i)) for i in range(20)]
    outcomes = await destination.send(batch)
    refused = [i for i, o in enumerate(outcomes) if isinstance(o, Rejected)]
    assert refused == [3, 17]
    rejected = outcomes[3]
    assert isinstance(rejected, Rejected) and "no_blocked" in rejected.reason
    assert all(isinstance(o, Delivered) for i, o in enumerate(outcomes) if i not in (3, 17))
    assert pg.execute("SELECT count(*) FROM tracks").fetchone() == (19,)


async def test_a_table_at_the_column_limit_keeps_new_keys_in_conflicts(
    make: Make, pg: psycopg.Connection[Any], pg_schema: str
) -> None:
    destination = make()
    # Short strings: 1,600 bigints would pass the 8 kB a row of fixed-width values may take.
    wide = track(**{f"k{i}": str(i) for i in range(1700)})
    assert delivered(await destination.send([wide]))
    (row,) = rows(pg, "SELECT * FROM tracks")
    assert len(row) == 1600  # PostgreSQL's limit
    assert row["context_ip"] == "203.0.113.9" and row["k0"] == "0"
    in_columns = {k: v for k, v in row.items() if k.startswith("k")}
    assert {**in_columns, **row["_conflicts"]} == {f"k{i}": str(i) for i in range(1700)}
    assert delivered(await destination.send([track(k1699=1, brand_new=2)]))
    (latest,) = rows(pg, "SELECT _conflicts FROM tracks WHERE k0 IS NULL")
    assert latest["_conflicts"] == {"k1699": 1, "brand_new": 2}


async def test_a_dropped_table_is_recreated_on_the_next_batch(
    make: Make, pg: psycopg.Connection[Any]
) -> None:
    destination = make()
    assert delivered(await destination.send([track(order_id="1")]))
    pg.execute("DROP TABLE tracks")
    outcomes = await destination.send([track(order_id="2")])
    if not delivered(outcomes):  # the first try finds its cached table gone and says retry
        assert all(isinstance(o, Retry) for o in outcomes)
        outcomes = await destination.send([track(order_id="2")])
    assert delivered(outcomes)
    assert rows(pg, "SELECT order_id FROM tracks") == [{"order_id": "2"}]
