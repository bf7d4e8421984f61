"""The plugin as the daemon sees it (entry point, specs, regions) and its pure parts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from postgres_testkit import HostContext

from headwater.plugins import load_plugins
from headwater.validation import validate_text
from headwater_postgres import PostgresSource, PostgresWarehouse
from headwater_postgres._column_types import (
    BIGINT,
    CONFLICT,
    DOUBLE,
    NUMERIC,
    TEXT,
    accept,
    convert_column,
    infer,
    join,
    needs_widening,
)
from headwater_postgres._connection import describe_dsn, settings_from_config
from headwater_postgres._naming import identifier, snake, table_for_event
from headwater_postgres._source_config import source_config
from headwater_postgres._source_sql import incremental_query
from headwater_postgres._values import iso_utc, json_value, stable_text
from headwater_spec import Identify, Track


def test_one_distribution_registers_both_connectors_through_its_entry_point() -> None:
    registry = load_plugins(only={"headwater-postgres"})
    assert not registry.failures
    source = registry.get("postgres-source")
    warehouse = registry.get("postgres-warehouse")
    assert source.cls is PostgresSource and warehouse.cls is PostgresWarehouse
    assert source.distribution == warehouse.distribution == "headwater-postgres"
    assert (source.spec.direction, warehouse.spec.direction) == ("in", "out")
    assert list(source.spec.regions) == list(warehouse.spec.regions) == ["any"]
    assert source.spec.event_types == ["identify", "track"]
    assert warehouse.spec.delivery.dedupes_on_message_id
    assert source.spec.secret_fields() == warehouse.spec.secret_fields() == {"dsn", "password"}


@pytest.mark.parametrize("cls", [PostgresSource, PostgresWarehouse])
def test_spec_examples_validate_as_declared(cls: type[Any]) -> None:
    validator = jsonschema.Draft202012Validator(cls.spec.config)
    for example in cls.spec.examples.valid:
        assert not list(validator.iter_errors(example)), example
    for example in cls.spec.examples.invalid:
        assert list(validator.iter_errors(example)), example


def test_residency_follows_the_region_the_operator_states(tmp_path: Any) -> None:
    registry = load_plugins(only={"headwater-postgres"})
    text = """
[workspace]
region = "eu"
residency = "strict"

[sources.crm]
connector = "postgres-source"
region = "eu"
dsn = "postgresql://reader@crm-db.internal/crm"
table = "users"
cursor_column = "updated_at"
key_columns = ["id"]
event_type = "identify"
user_id_column = "id"

[destinations.warehouse]
connector = "postgres-warehouse"
region = "%s"
dsn = "postgresql://loader@dwh.internal/analytics"
"""
    inside = validate_text(text % "eu", registry=registry)
    assert inside.valid, inside.errors
    outside = validate_text(text % "us", registry=registry)
    assert not outside.valid
    assert any("warehouse" in p.message for p in outside.errors)


def test_repr_and_settings_never_show_the_password() -> None:
    config = {
        "dsn": "postgresql://loader:dsn-secret-77@db.example.com:6543/analytics",
        "password": "key-secret-88",
    }
    destination = PostgresWarehouse(config, HostContext("wh"))
    shown = repr(destination) + repr(destination.settings) + destination.settings.target
    assert "dsn-secret-77" not in shown and "key-secret-88" not in shown
    assert destination.settings.target == "loader@db.example.com:6543/analytics"
    scrubbed = destination.settings.scrub("x dsn-secret-77 key-secret-88 " + config["dsn"])
    assert "secret" not in scrubbed


def test_describe_dsn_handles_key_value_and_broken_strings() -> None:
    assert describe_dsn("host=h port=1 dbname=d user=u password=p") == "u@h:1/d"
    assert describe_dsn("postgresql:///d") == "(default user)@(local socket):5432/d"
    assert describe_dsn("host='unterminated") == "(unparsable dsn)"
    settings = settings_from_config(
        {"dsn": "host=h password=inline-pw-1"}, default_schema="s", application_name="a"
    )
    assert settings.scrub("inline-pw-1") == "***"


def test_incremental_query_spells_out_the_row_comparison() -> None:
    config = source_config(
        {
            "table": "crm.users",
            "cursor_column": "updated_at",
            "key_columns": ["org", "id"],
            "event_type": "identify",
            "user_id_column": "id",
        }
    )
    text = incremental_query(config, resume=True).as_string(None)
    assert text == (
        'SELECT * FROM (SELECT * FROM "crm"."users") AS "hw_src" WHERE '
        '"hw_src"."updated_at" >= %(c)s AND ("hw_src"."updated_at" > %(c)s OR '
        '("hw_src"."updated_at" = %(c)s AND ("hw_src"."org" > %(k0)s OR '
        '("hw_src"."org" = %(k0)s AND "hw_src"."id" > %(k1)s)))) '
        'ORDER BY "hw_src"."updated_at", "hw_src"."org", "hw_src"."id"'
    )


def test_row_values_become_json_and_stable_text() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert iso_utc(moment) == "2024-01-02T03:04:05.678Z"
    assert iso_utc(moment.replace(microsecond=678901)) == "2024-01-02T03:04:05.678901Z"
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert iso_utc(plus_two) == "2024-01-02T03:04:05.678Z"
    assert iso_utc(datetime(2024, 1, 2)) == "2024-01-02T00:00:00.000Z"
    assert stable_text(plus_two) == stable_text(moment) == "2024-01-02T03:04:05.678000+00:00"
    assert json_value(Decimal("19.99")) == 19.99 and json_value(Decimal("3.00")) == 3
    assert json_value(Decimal("123456789012345678901")) == 123456789012345678901
    assert json_value(Decimal("NaN")) is None
    assert json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert json_value(b"\x00\x01") == "AAE="
    assert json_value(date(2024, 5, 1)) == "2024-05-01"
    assert json_value({"a": [Decimal("1.5"), moment]}) == {"a": [1.5, "2024-01-02T03:04:05.678Z"]}
    assert stable_text(Decimal("1.10")) == "1.10" and stable_text(b"\xff") == "\\xff"


def test_names_are_snake_cased_and_fit_postgres_identifiers() -> None:
    assert snake("userId") == "user_id"
    assert snake("HTTPStatus") == "http_status"
    assert snake("Page URL") == "page_url"
    assert snake("  --weird--  ") == "weird"
    assert identifier("9lives") == "_9lives" and identifier("") == "_"
    long = identifier("x" * 100)
    assert len(long) == 63 and long != identifier("x" * 99)
    assert table_for_event("Order Completed") == "order_completed"
    assert table_for_event("!!!") == "event"


def test_types_infer_join_widen_and_conflict_as_documented() -> None:
    assert [infer(v) for v in (True, 1, 2**64, 1.5, "x", [1])] == [
        "boolean",
        BIGINT,
        NUMERIC,
        DOUBLE,
        TEXT,
        "jsonb",
    ]
    assert join(BIGINT, DOUBLE) == DOUBLE and join(BIGINT, NUMERIC) == NUMERIC
    assert join(TEXT, BIGINT) == TEXT
    assert needs_widening(BIGINT, 1.5) == DOUBLE and needs_widening(BIGINT, 2**70) == NUMERIC
    assert needs_widening("integer", 2**40) == BIGINT and needs_widening(BIGINT, "x") is None
    assert needs_widening(BIGINT, True) is None
    assert accept(BIGINT, "3") is CONFLICT and accept("boolean", 1) is CONFLICT
    assert accept(TEXT, 3) == "3" and accept(TEXT, {"a": 1}) == '{"a":1}'
    assert accept(DOUBLE, 2) == 2.0 and accept(BIGINT, True) is CONFLICT
    assert accept("timestamptz", "2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    assert accept("timestamptz", "yesterday") is CONFLICT
    assert accept("tsvector", "x") is CONFLICT


def test_batch_columns_convert_per_value_whatever_their_neighbours() -> None:
    """The whole-column shortcuts (all strings, no NUL; each timestamp parsed once) give what
    converting value by value gives."""
    texts = ["a", None, "b\x00c", 3, {"k": 1}, ""]
    assert convert_column(TEXT, texts) == (["a", None, "bc", "3", '{"k":1}', ""], [], False)
    plain = ["a", None, "b"]
    assert convert_column(TEXT, plain)[0] is plain
    when = datetime(2024, 1, 1, tzinfo=UTC)
    times = ["2024-01-01T00:00:00Z", "nope", None, "2024-01-01T00:00:00Z", ["x"], "nope"]
    assert convert_column("timestamptz", times) == (
        [when, None, None, when, None, None],
        [1, 4, 5],
        False,
    )


def test_events_built_by_the_source_survive_the_warehouse_row_builder() -> None:
    from headwater_postgres._warehouse_rows import RowBuilder

    builder = RowBuilder(flatten=True, track_tables=False)
    ((table, kind, row),) = builder.rows(
        Track(messageId="m1", userId="u", event="E", properties={"a": {"b": {"c": 1}}})
    )
    assert (table, kind) == ("tracks", "track") and row["a_b_c"] == 1
    ((table, _, row),) = builder.rows(Identify(messageId="m2", userId="u", traits={"e": 1}))
    assert table == "identifies" and row["e"] == 1
