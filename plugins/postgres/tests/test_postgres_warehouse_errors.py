"""postgres-warehouse: `check` and `send` say clearly what is wrong, never leak the password."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from postgres_testkit import HostContext
from psycopg import sql

from headwater_postgres import PostgresWarehouse
from headwater_postgres._connection import PostgresError
from headwater_spec import Delivered, Retry, Track

pytestmark = pytest.mark.timeout(60)


def events(n: int = 3) -> list[Track]:
    return [
        Track(messageId=str(uuid.uuid4()), userId="u1", event="Clicked", properties={"i": i})
        for i in range(n)
    ]


@pytest.fixture
def plain_role(postgres_dsn: str, pg_schema: str) -> Iterator[str]:
    """A login role without CREATE on the database or on the test schema."""
    role = f"hw_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(pg_schema), sql.Identifier(role)
            )
        )
    try:
        yield role
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_check_says_whether_the_schema_exists_or_will_be_created(
    postgres_dsn: str, pg_schema: str
) -> None:
    existing = await PostgresWarehouse(
        {"dsn": postgres_dsn, "schema": pg_schema}, HostContext("wh")
    ).check()
    assert existing.ok and f"schema {pg_schema!r} exists and accepts tables" in existing.message
    missing = await PostgresWarehouse(
        {"dsn": postgres_dsn, "schema": pg_schema + "_new"}, HostContext("wh")
    ).check()
    assert missing.ok and "does not exist and will be created" in missing.message


async def test_check_and_send_name_a_missing_privilege(pg_schema: str, plain_role: str) -> None:
    dsn = f"postgresql://{plain_role}@127.0.0.1:5432/test"
    destination = PostgresWarehouse({"dsn": dsn, "schema": pg_schema}, HostContext("wh"))
    result = await destination.check()
    assert not result.ok
    assert f"the user may not create tables in schema {pg_schema!r}" in result.message
    assert "grant CREATE or set `schema`" in result.message
    elsewhere = await PostgresWarehouse(
        {"dsn": dsn, "schema": pg_schema + "_x"}, HostContext("wh")
    ).check()
    assert not elsewhere.ok and "does not exist and the user may not create it" in elsewhere.message

    outcomes = await destination.send(events())
    await destination.close()
    assert all(isinstance(o, Retry) for o in outcomes)
    assert "permission denied for schema" in outcomes[0].reason  # type: ignore[union-attr]


async def test_wrong_password_is_retried_with_the_reason_and_never_shows_the_password(
    password_postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    destination = PostgresWarehouse(
        {"dsn": password_postgres, "password": "wrong-pass-5678"}, HostContext("wh")
    )
    result = await destination.check()
    assert not result.ok and "password authentication failed" in result.message
    outcomes = await destination.send(events())
    assert all(isinstance(o, Retry) for o in outcomes)
    reason = outcomes[0].reason  # type: ignore[union-attr]
    assert "password authentication failed" in reason and "check the password" in reason
    for text in (result.message, reason, repr(destination), caplog.text):
        assert "wrong-pass-5678" not in text

    fixed = PostgresWarehouse(
        {"dsn": password_postgres, "password": "right-pass"}, HostContext("wh")
    )
    assert isinstance((await fixed.send(events(1)))[0], Delivered)
    await fixed.close()


async def test_unreachable_database_is_a_retry_and_does_not_hold_up_another_destination(
    postgres_dsn: str, pg_schema: str
) -> None:
    down = PostgresWarehouse(
        {"dsn": "postgresql://postgres@127.0.0.1:1/test", "connect_timeout": 2},
        HostContext("down"),
    )
    up = PostgresWarehouse({"dsn": postgres_dsn, "schema": pg_schema}, HostContext("up"))
    bad, good = await asyncio.gather(down.send(events()), up.send(events()))
    await up.close()
    assert all(isinstance(o, Retry) for o in bad)
    assert "check the host and port in `dsn`" in bad[0].reason  # type: ignore[union-attr]
    assert all(isinstance(o, Delivered) for o in good)


async def test_a_connection_killed_between_batches_is_replaced_at_once(
    postgres_dsn: str, pg_schema: str
) -> None:
    destination = PostgresWarehouse({"dsn": postgres_dsn, "schema": pg_schema}, HostContext("wh"))
    assert isinstance((await destination.send(events(1)))[0], Delivered)
    assert destination._conn is not None
    pid = destination._conn.info.backend_pid
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert all(isinstance(o, Delivered) for o in await destination.send(events(2)))
    assert destination._conn is not None and destination._conn.info.backend_pid != pid
    await destination.close()


def test_invalid_config_is_refused_naming_the_key() -> None:
    with pytest.raises(PostgresError, match="`flatten`"):
        PostgresWarehouse({"dsn": "postgresql://x:pw@h/db", "flatten": "yes"}, HostContext("wh"))
    with pytest.raises(PostgresError) as caught:
        PostgresWarehouse({"dsn": "postgresql://x:pw@h/db", "table": "t"}, HostContext("wh"))
    assert "'table' was unexpected" in str(caught.value)
