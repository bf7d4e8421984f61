"""postgres-source: a bad config gives a clear error at `check` and at run time, no secrets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
import pytest
from postgres_testkit import HostContext, MemorySourceContext

from headwater_postgres import PostgresSource
from headwater_postgres._checkpoint import Checkpoint, encode_checkpoint
from headwater_postgres._connection import PostgresError

pytestmark = pytest.mark.timeout(60)


def config(dsn: str, schema: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dsn": dsn,
        "schema": schema,
        "table": "accounts",
        "cursor_column": "updated_at",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        "poll_interval": 0.05,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def accounts(pg: psycopg.Connection[Any]) -> None:
    pg.execute("CREATE TABLE accounts (id int PRIMARY KEY, name text, updated_at timestamptz)")
    pg.execute("INSERT INTO accounts VALUES (1, 'a', now()), (2, 'b', now())")


async def check_and_run(source: PostgresSource) -> tuple[str, str]:
    """The check message and the error `run` raises, both asserted to be failures."""
    result = await source.check()
    assert not result.ok
    with pytest.raises(PostgresError) as caught:
        await source.read_pass(MemorySourceContext("crm"), None)
    await source.close()
    return result.message, str(caught.value)


async def test_check_names_the_columns_of_a_good_config(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    result = await PostgresSource(config(postgres_dsn, pg_schema), HostContext("crm")).check()
    assert result.ok, result.message
    assert "id, name, updated_at" in result.message


async def test_missing_table_is_named_with_the_key_to_fix(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    source = PostgresSource(config(postgres_dsn, pg_schema, table="acounts"), HostContext("crm"))
    for message in await check_and_run(source):
        assert 'relation "acounts" does not exist' in message
        assert "check `table` and `schema`" in message
        assert "postgres-source 'crm'" in message


async def test_bad_query_is_reported_with_the_database_message(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    bad = config(postgres_dsn, pg_schema, table=None, query="SELEC id, updated_at FROM accounts")
    for message in await check_and_run(PostgresSource(bad, HostContext("crm"))):
        assert 'syntax error at or near "SELEC"' in message
        assert "check the SQL in `query`" in message


async def test_a_mapped_column_missing_from_the_result_names_its_key(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    source = PostgresSource(
        config(postgres_dsn, pg_schema, cursor_column="modified_at"), HostContext("crm")
    )
    for message in await check_and_run(source):
        assert "column 'modified_at' named in `cursor_column`" in message
        assert "(id, name, updated_at)" in message


async def test_unknown_user_names_the_dsn(postgres_dsn: str, pg_schema: str) -> None:
    dsn = "postgresql://no_such_role:pw-in-dsn@127.0.0.1:5432/test"
    source = PostgresSource(config(dsn, pg_schema), HostContext("crm"))
    for message in await check_and_run(source):
        assert 'role "no_such_role" does not exist' in message
        assert "check the user name in `dsn`" in message
        assert "pw-in-dsn" not in message


async def test_unreachable_server_names_host_and_port(pg_schema: str) -> None:
    dsn = "postgresql://postgres@127.0.0.1:1/test"
    source = PostgresSource(config(dsn, pg_schema, connect_timeout=2), HostContext("crm"))
    for message in await check_and_run(source):
        assert "cannot connect to postgres@127.0.0.1:1/test" in message
        assert "check the host and port in `dsn`" in message


async def test_wrong_password_is_reported_without_the_password(
    password_postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source = PostgresSource(
        config(password_postgres, "public", password="not-the-pass-1234"), HostContext("crm")
    )
    for message in await check_and_run(source):
        assert 'password authentication failed for user "hw"' in message
        assert "check the password (`password`, or the one in `dsn`)" in message
        assert "not-the-pass-1234" not in message
    embedded = password_postgres.replace("hw@", "hw:in-dsn-secret-99@")
    source = PostgresSource(config(embedded, "public"), HostContext("crm"))
    for message in await check_and_run(source):
        assert "password authentication failed" in message
        assert "in-dsn-secret-99" not in message
    assert "not-the-pass-1234" not in repr(source) and "in-dsn-secret-99" not in repr(source)
    assert "not-the-pass-1234" not in caplog.text and "in-dsn-secret-99" not in caplog.text


async def test_right_password_connects(password_postgres: str) -> None:
    good = PostgresSource(
        config(
            password_postgres,
            "pg_catalog",
            table="pg_database",
            cursor_column="oid",
            key_columns=["oid"],
            user_id_column="datname",
            password="right-pass",
        ),
        HostContext("crm"),
    )
    result = await good.check()
    assert result.ok, result.message


async def test_invalid_config_is_refused_at_construction_naming_the_key() -> None:
    with pytest.raises(PostgresError) as caught:
        PostgresSource(
            {
                "dsn": "postgresql://u:hidden-pw@h/db",
                "table": "t",
                "cursor_column": "id",
                "key_columns": [],
                "event_type": "identify",
                "user_id_column": "id",
            },
            HostContext("crm"),
        )
    assert "`key_columns`" in str(caught.value)
    assert "hidden-pw" not in str(caught.value)


async def test_checkpoint_from_another_cursor_column_is_refused(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    source = PostgresSource(config(postgres_dsn, pg_schema), HostContext("crm"))
    ctx = MemorySourceContext("crm")
    ctx.checkpoint = encode_checkpoint(
        Checkpoint(cursor_column="id", key_columns=(), cursor="2", keys=())
    )
    with pytest.raises(PostgresError, match="rename the source instance"):
        await source.run(ctx)


async def test_a_failing_source_does_not_stop_another(
    postgres_dsn: str, pg_schema: str, accounts: None
) -> None:
    broken = PostgresSource(config(postgres_dsn, pg_schema, table="missing"), HostContext("bad"))
    healthy = PostgresSource(config(postgres_dsn, pg_schema), HostContext("good"))
    bad_ctx, good_ctx = MemorySourceContext("bad"), MemorySourceContext("good")
    bad_task = asyncio.create_task(broken.run(bad_ctx))
    good_task = asyncio.create_task(healthy.run(good_ctx))
    with pytest.raises(PostgresError, match="missing"):
        await bad_task
    for _ in range(600):
        if len(good_ctx.events) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(good_ctx.events) == 2, "the healthy source read nothing in 30 s"
    assert not good_task.done()
    good_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await good_task
    assert [e.userId for e in good_ctx.events] == ["1", "2"]
    assert healthy._conn is None  # run() closes its connection when cancelled
