"""Both PostgreSQL connectors against the Headwater conformance suite, on the real server.

Each test of the suite gets its own schema (the `pg_schema` fixture); the source reads a
table `people` there, which ``produce`` grows.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from headwater_postgres import PostgresSource, PostgresWarehouse
from headwater_spec.conformance import DestinationConformance, SourceConformance

# trust auth ignores it, but the suite must see it never leak.
PASSWORD = "conformance-pass-4321"


class TestPostgresSourceConformance(SourceConformance):
    connector = PostgresSource
    settle = 0.3

    @pytest.fixture(autouse=True)
    def _database(self, postgres_dsn: str, pg_schema: str) -> None:
        self.dsn = postgres_dsn
        self.schema = pg_schema
        self.produced = 0
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.people (id bigint PRIMARY KEY, email text, "
                    "updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                ).format(sql.Identifier(pg_schema))
            )

    def config(self) -> dict[str, Any]:
        return {
            "dsn": self.dsn,
            "password": PASSWORD,
            "schema": self.schema,
            "table": "people",
            "cursor_column": "updated_at",
            "key_columns": ["id"],
            "event_type": "identify",
            "user_id_column": "id",
            "poll_interval": 0.05,
        }

    async def produce(self, count: int) -> None:
        first = self.produced + 1
        self.produced += count
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {}.people (id, email) SELECT g, 'p' || g || '@example.com' "
                    "FROM generate_series(%s::bigint, %s::bigint) g"
                ).format(sql.Identifier(self.schema)),
                [first, self.produced],
            )


class TestPostgresWarehouseConformance(DestinationConformance):
    connector = PostgresWarehouse
    talks_http = False

    @pytest.fixture(autouse=True)
    def _database(self, postgres_dsn: str, pg_schema: str) -> None:
        self.dsn = postgres_dsn
        self.schema = pg_schema

    def config(self) -> dict[str, Any]:
        return {"dsn": self.dsn, "password": PASSWORD, "schema": self.schema}

    def broken_config(self) -> dict[str, Any]:
        return {
            "dsn": "postgresql://postgres@127.0.0.1:1/test",
            "password": PASSWORD,
            "connect_timeout": 2,
        }
