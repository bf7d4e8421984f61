"""End to end with the PostgreSQL connectors: real `headwater serve` processes, the real server.

- postgres-source in a daemon killed with SIGKILL in the middle of reading 100k rows: after a
  restart every row is in the log exactly once.
- Events sent to the tracking API land in postgres-warehouse tables; the same events sent
  again, and the same log range delivered again (the destination's cursor moved back, as a
  replay does), add no rows; a new property adds a column; a type conflict lands in
  `_conflicts`.
- Reverse ETL into the warehouse through one daemon: rows -> identifies -> table.
- A bad config (missing table, unknown user, unreachable server) is reported clearly by
  `headwater validate --check` and in the daemon's log, and the other connectors keep going.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from headwater.log import LmdbLog
from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess

pytestmark = pytest.mark.timeout(180)

WRITE_KEY = "pg-pipeline-key"
PASSWORD = "pipeline-pass-2468"  # trust auth ignores it; it must never show up anywhere


@pytest.fixture
def schemas(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """Make fresh schemas for this test (dropped afterwards)."""
    made: list[str] = []

    def make() -> str:
        name = f"hw_e2e_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        made.append(name)
        return name

    yield make
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def daemon_config(*sections: str) -> str:
    return f"""
[workspace]
name = "pg-e2e"
region = "eu"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"
""" + "\n".join(sections)


def source_section(name: str, schema: str, table: str = "users", **extra: Any) -> str:
    keys: dict[str, Any] = {
        "connector": "postgres-source",
        "region": "eu",
        "dsn": "${PG_DSN}",
        "password": "${PG_PASSWORD}",
        "schema": schema,
        "table": table,
        "cursor_column": "updated_at",
        "key_columns": ["id"],
        "event_type": "identify",
        "user_id_column": "id",
        "poll_interval": 0.2,
        **extra,
    }
    lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v!r}" for k, v in keys.items()]
    return f"[sources.{name}]\n" + "\n".join(lines) + "\n"


def warehouse_section(name: str, schema: str, dsn: str = "${PG_DSN}") -> str:
    return f"""[destinations.{name}]
connector = "postgres-warehouse"
region = "eu"
dsn = "{dsn}"
password = "${{PG_PASSWORD}}"
schema = "{schema}"
start = "beginning"
"""


TRACKING_SOURCE = f"""[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]
"""


def start_daemon(
    headwater_daemon: Callable[..., DaemonProcess], postgres_dsn: str, config: str
) -> DaemonProcess:
    return headwater_daemon(config, env={"PG_DSN": postgres_dsn, "PG_PASSWORD": PASSWORD})


def last_seq(daemon: DaemonProcess) -> int:
    with LmdbLog(daemon.data_dir, readonly=True) as log:
        return log.last_seq()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(dsn: str, schema: str, table: str, where: str = "TRUE") -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(
                    sql.Identifier(schema, table)
                )
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return int(row[0]) if row else 0


def destination_status(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    response = httpx.get(
        f"{daemon.url}/admin/destinations/{name}", headers=daemon.admin_headers(), timeout=10
    )
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def assert_no_secret(daemon: DaemonProcess) -> None:
    for text in (daemon.stdout(), daemon.stderr()):
        assert PASSWORD not in text


def test_kill9_mid_read_resumes_without_gaps_or_duplicates(
    headwater_daemon: Callable[..., DaemonProcess],
    postgres_dsn: str,
    schemas: Callable[[], str],
) -> None:
    schema = schemas()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text, "
            "updated_at timestamptz NOT NULL)"
        )
        # 400 rows share each timestamp, so fetches of 300 end among ties.
        conn.execute(
            "INSERT INTO users SELECT g, 'u' || g || '@example.com', "
            "timestamptz '2024-01-01 00:00:00+00' + (g / 400) * interval '1 second' "
            "FROM generate_series(1, 100000) g"
        )
        conn.execute("CREATE INDEX ON users (updated_at, id)")
    daemon = start_daemon(
        headwater_daemon,
        postgres_dsn,
        daemon_config(source_section("crm", schema, fetch_size=300)),
    )
    killed_at = wait_for(lambda: last_seq(daemon) >= 5_000 and last_seq(daemon), "the read")
    daemon.kill9()
    stored = last_seq(daemon)
    assert stored < 100_000, "the read finished before the kill; nothing was interrupted"
    assert stored >= killed_at

    daemon.start()
    wait_for(lambda: last_seq(daemon) >= 100_000, "the rest of the rows", timeout=120)
    time.sleep(1.0)  # a few more polls: nothing more may arrive
    records = daemon.records()
    users = [int(r.event["userId"]) for r in records]
    assert sorted(users) == list(range(1, 100_001))
    assert users == sorted(users)  # in cursor order, across the restart too
    repeated = [m for m, n in Counter(r.event["messageId"] for r in records).items() if n > 1]
    assert not repeated
    assert_no_secret(daemon)


def post_batch(daemon: DaemonProcess, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{daemon.url}/v1/batch", json={"batch": events}, auth=(WRITE_KEY, ""), timeout=10
    )
    assert response.status_code == 200, response.text


def order(n: int, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"order-{n}",
        "userId": "u-1",  # one user: the router keeps their order, so a marker comes last
        "event": "Order Completed",
        "timestamp": "2024-05-01T10:00:00Z",
        "context": {"ip": "203.0.113.5"},
        "properties": {"order_id": f"o{n}", "total": 10 + n, **properties},
    }


def test_events_through_the_daemon_land_in_the_warehouse_and_replays_add_no_rows(
    headwater_daemon: Callable[..., DaemonProcess],
    postgres_dsn: str,
    schemas: Callable[[], str],
) -> None:
    wh = schemas()
    config = daemon_config(TRACKING_SOURCE, warehouse_section("warehouse", wh))
    daemon = start_daemon(headwater_daemon, postgres_dsn, config)
    first = [order(n) for n in range(50)]
    first.append(
        {"type": "identify", "messageId": "id-1", "userId": "u-1", "traits": {"plan": "pro"}}
    )
    post_batch(daemon, first)
    wait_for(lambda: count(postgres_dsn, wh, "tracks") == 50, "50 tracks rows")
    wait_for(lambda: count(postgres_dsn, wh, "identifies") == 1, "the identify row")

    # A new property adds a column; a text where the number column is goes to _conflicts.
    post_batch(daemon, [order(50, coupon="SPRING"), order(51, total="a lot")])
    wait_for(lambda: count(postgres_dsn, wh, "tracks") == 52, "52 tracks rows")
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(wh)))
        assert conn.execute("SELECT coupon FROM tracks WHERE order_id = 'o50'").fetchone() == (
            "SPRING",
        )
        assert conn.execute(
            "SELECT total, _conflicts FROM tracks WHERE order_id = 'o51'"
        ).fetchone() == (None, {"total": "a lot"})

    # The same events again (same messageIds) add no row.
    post_batch(daemon, first)
    post_batch(daemon, [order(1000)])
    wait_for(lambda: count(postgres_dsn, wh, "tracks", "order_id = 'o1000'"), "marker 1")
    assert count(postgres_dsn, wh, "tracks") == 53

    # Deliver the whole log range again: move the destination's cursor back while stopped.
    delivered_before = destination_status(daemon, "warehouse")["delivered"]
    assert delivered_before >= 104
    assert daemon.terminate() == 0
    with LmdbLog(daemon.data_dir) as log:
        log.set_cursor("destination:warehouse", 0)
    daemon.start()
    post_batch(daemon, [order(1001)])
    wait_for(lambda: count(postgres_dsn, wh, "tracks", "order_id = 'o1001'"), "marker 2")
    assert count(postgres_dsn, wh, "tracks") == 54
    assert count(postgres_dsn, wh, "identifies") == 1
    # The range really went through send() again (106 events in the log, marker 2 included);
    # the counter moves once send() returns, a moment after the row is committed.
    wait_for(
        lambda: destination_status(daemon, "warehouse")["delivered"] >= delivered_before + 106,
        "the delivered counter to count the range sent again",
    )
    assert_no_secret(daemon)


def test_reverse_etl_rows_reach_the_warehouse_through_one_daemon(
    headwater_daemon: Callable[..., DaemonProcess],
    postgres_dsn: str,
    schemas: Callable[[], str],
) -> None:
    crm, wh = schemas(), schemas()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(crm)))
        conn.execute(
            "CREATE TABLE users (id bigint PRIMARY KEY, plan text, seats int, "
            "updated_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO users SELECT g, 'free', 1 FROM generate_series(1, 1000) g")
    config = daemon_config(source_section("crm", crm), warehouse_section("warehouse", wh))
    daemon = start_daemon(headwater_daemon, postgres_dsn, config)
    wait_for(lambda: count(postgres_dsn, wh, "identifies") == 1000, "1000 identifies rows")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {}.users SET plan = 'pro', seats = 5, updated_at = now() WHERE id <= 10"
            ).format(sql.Identifier(crm))
        )
    wait_for(
        lambda: count(postgres_dsn, wh, "identifies", "plan = 'pro' AND seats = 5") == 10,
        "the 10 updated users",
    )
    time.sleep(0.6)
    assert count(postgres_dsn, wh, "identifies") == 1010
    assert_no_secret(daemon)


def test_bad_configs_are_reported_clearly_and_do_not_stop_the_others(
    headwater_daemon: Callable[..., DaemonProcess],
    postgres_dsn: str,
    schemas: Callable[[], str],
    tmp_path: Any,
) -> None:
    crm, wh = schemas(), schemas()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.users (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL)"
            ).format(sql.Identifier(crm))
        )
        conn.execute(
            sql.SQL("INSERT INTO {}.users SELECT g, now() FROM generate_series(1, 20) g").format(
                sql.Identifier(crm)
            )
        )
    unknown_user = "postgresql://nobody_here@127.0.0.1:5432/test"
    config = daemon_config(
        TRACKING_SOURCE,
        source_section("good", crm),
        source_section("no-table", crm, table="no_such_table"),
        source_section("bad-query", crm, cursor_column="modified_at"),
        warehouse_section("up", wh),
        warehouse_section("down", wh, dsn="postgresql://postgres@127.0.0.1:1/test"),
        warehouse_section("no-user", wh, dsn=unknown_user),
    )

    path = tmp_path / "headwater.toml"
    path.write_text(config)
    check = subprocess.run(
        [sys.executable, "-m", "headwater", "validate", str(path), "--check"],
        capture_output=True,
        text=True,
        env={"PG_DSN": postgres_dsn, "PG_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    report = check.stdout + check.stderr
    assert check.returncode == 1, report
    assert 'relation "no_such_table" does not exist' in report
    assert "column 'modified_at' named in `cursor_column`" in report
    assert "check the host and port in `dsn`" in report
    assert 'role "nobody_here" does not exist' in report
    assert PASSWORD not in report

    daemon = start_daemon(headwater_daemon, postgres_dsn, config)
    post_batch(daemon, [order(1)])
    wait_for(lambda: count(postgres_dsn, wh, "identifies") == 20, "the good source's rows")
    wait_for(lambda: count(postgres_dsn, wh, "tracks") == 1, "the tracking API's event")
    wait_for(lambda: "no_such_table" in daemon.stderr() + daemon.stdout(), "the error log")
    logs = daemon.stderr() + daemon.stdout()
    assert "check `table` and `schema`" in logs
    assert "column 'modified_at' named in `cursor_column`" in logs
    assert daemon.running()
    assert_no_secret(daemon)
