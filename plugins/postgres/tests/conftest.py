"""Fixtures for the PostgreSQL connector tests: a private schema per test, in-memory hosts.

Every test that touches the database gets its own schema (``hw_t_<random>``), dropped
afterwards, so tests can run in parallel against the one shared server.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from headwater_spec import Event


class HostContext:
    """The ConnectorContext a daemon would give an instance, minus the daemon."""

    def __init__(self, instance_id: str = "test", data_dir: Path | None = None) -> None:
        self.instance_id = instance_id
        self.region = "eu"
        self.endpoint: str | None = None
        self.data_dir = data_dir or Path(".")
        self.logger = logging.getLogger(f"headwater.test.{instance_id}")


class SourceCrash(Exception):
    """Stands for the process dying: raised by MemorySourceContext when told to."""


class MemorySourceContext(HostContext):
    """A SourceContext keeping the log and checkpoint in memory.

    ``emit_and_checkpoint`` appends events and moves the checkpoint together, as the real
    log does in one transaction; ``crash_after`` makes the n-th call raise *before* writing,
    as if the process died between two commits.
    """

    def __init__(self, instance_id: str = "test", *, crash_after: int | None = None) -> None:
        super().__init__(instance_id)
        self.events: list[Event] = []
        self.checkpoint: bytes | None = None
        self.commits = 0
        self.crash_after = crash_after

    def _maybe_crash(self) -> None:
        if self.crash_after is not None and self.commits >= self.crash_after:
            raise SourceCrash(f"crash after {self.commits} commits")

    async def emit(self, events: Sequence[Event]) -> None:
        self._maybe_crash()
        self.events.extend(events)
        self.commits += 1

    async def load_checkpoint(self) -> bytes | None:
        return self.checkpoint

    async def save_checkpoint(self, value: bytes) -> None:
        self._maybe_crash()
        self.checkpoint = value
        self.commits += 1

    async def emit_and_checkpoint(self, events: Sequence[Event], value: bytes) -> None:
        self._maybe_crash()
        self.events.extend(events)
        self.checkpoint = value
        self.commits += 1


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema for this test, dropped with everything in it afterwards."""
    name = f"hw_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg(postgres_dsn: str, pg_schema: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection whose search path is the test's schema."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        yield conn
