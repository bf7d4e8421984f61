"""postgres-source reads timestamps and numerics as the server's text: the JSON, messageIds
and checkpoints must be exactly what the parsed values gave (stored checkpoints and ids
downstream depend on them), and types read through those loaders keep psycopg's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from postgres_testkit import HostContext, MemorySourceContext
from psycopg.types.string import TextLoader

from headwater_postgres import PostgresSource
from headwater_postgres._connection import PostgresError, connect_kwargs, settings_from_config
from headwater_postgres._values import (
    NUMERIC_OID,
    TEXT_LOADED,
    TIMESTAMP_OID,
    TIMESTAMPTZ_OID,
    json_converter,
    json_value,
    stable_and_iso,
    stable_converter,
    stable_text,
    str_converter,
)
from headwater_spec import Identify

pytestmark = pytest.mark.timeout(120)

# Years 1 to 9999, every count of fractional digits, whole seconds and milliseconds.
VALUES_SQL = """
SELECT t, t::timestamp, n FROM (
  SELECT timestamptz '0001-01-01 00:00:00+00'
           + (g::bigint * 78875000) * interval '1 second'
           + (CASE g % 8 WHEN 0 THEN 0 WHEN 1 THEN 500000 WHEN 2 THEN 120000
              WHEN 3 THEN 123000 WHEN 4 THEN 123400 WHEN 5 THEN 123450 WHEN 6 THEN 1
              ELSE 999999 END) * interval '1 microsecond' AS t,
         (CASE g % 9 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity'
            WHEN 3 THEN '0.0000001' WHEN 4 THEN '123456789012345678901234567890'
            WHEN 5 THEN '9007199254740993.000' WHEN 6 THEN '-19.990'
            WHEN 7 THEN '1e-20' ELSE (g / 7.0)::text END)::numeric AS n
  FROM generate_series(0, 3999) g
) v
"""


def table_t(dsn: str, schema: str, **extra: Any) -> dict[str, Any]:
    """Identify events from table ``t`` (id, at, ...), incremental on ``at``."""
    return {
        "dsn": dsn,
        "schema": schema,
        "table": "t",
        "cursor_column": "at",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        **extra,
    }


def test_text_read_values_convert_exactly_as_the_parsed_values(postgres_dsn: str) -> None:
    settings = settings_from_config(
        {"dsn": postgres_dsn}, default_schema="public", application_name="t"
    )
    with psycopg.connect(postgres_dsn, **connect_kwargs(settings)) as conn:
        parsed = conn.execute(VALUES_SQL).fetchall()
        cur = conn.cursor()
        for name in TEXT_LOADED:
            cur.adapters.register_loader(name, TextLoader)
        texts = cur.execute(VALUES_SQL).fetchall()
    oids = (TIMESTAMPTZ_OID, TIMESTAMP_OID, NUMERIC_OID)
    checked = 0
    for parsed_row, text_row in zip(parsed, texts, strict=True):
        for oid, value, text in zip(oids, parsed_row, text_row, strict=True):
            assert isinstance(text, str)
            to_json = json_converter(oid, as_text=True)
            assert to_json is not None
            assert to_json(text) == json_value(value), text
            assert stable_converter(oid, as_text=True)(text) == stable_text(value), text
            assert str_converter(oid, as_text=True)(text) == str(value), text
            both = stable_and_iso(oid, as_text=True)
            if both is not None:
                assert both(text) == (stable_text(value), json_value(value)), text
            checked += 1
    assert checked == 12_000


async def test_arrays_and_ranges_of_timestamps_keep_psycopg_values(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    """A timestamptz[] would come as text too once timestamptz is read as text: such a
    result is read with psycopg's loaders, and its JSON is the same."""
    pg.execute(
        "CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL, seen timestamptz[], "
        "during tstzrange, score numeric)"
    )
    pg.execute(
        "INSERT INTO t VALUES (1, '2024-01-01 00:00:00.5+00', "
        "'{2024-01-02 00:00:00+00}', '[2024-01-01, 2024-01-02)', 1.50)"
    )
    source = PostgresSource(table_t(postgres_dsn, pg_schema), HostContext("crm"))
    ctx = MemorySourceContext("crm")
    checkpoint = await source.read_pass(ctx, None)
    await source.close()
    (event,) = ctx.events
    assert isinstance(event, Identify)
    assert event.timestamp == "2024-01-01T00:00:00.500Z"
    assert event.traits["seen"] == ["2024-01-02T00:00:00.000Z"]
    assert event.traits["during"] == "[2024-01-01 00:00:00+00:00, 2024-01-02 00:00:00+00:00)"
    assert event.traits["score"] == 1.5
    assert checkpoint is not None and checkpoint.cursor == "2024-01-01T00:00:00.500000+00:00"


async def test_a_timestamp_events_cannot_carry_fails_the_pass_with_the_value(
    postgres_dsn: str, pg_schema: str, pg: psycopg.Connection[Any]
) -> None:
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL)")
    pg.execute("INSERT INTO t VALUES (1, '2024-01-01+00'), (2, 'infinity')")
    source = PostgresSource(table_t(postgres_dsn, pg_schema, fetch_size=1), HostContext("crm"))
    ctx = MemorySourceContext("crm")
    with pytest.raises(PostgresError, match="'infinity' is outside what an event can carry"):
        await source.read_pass(ctx, None)
    await source.close()
    assert [e.userId for e in ctx.events] == ["1"]
