"""Fixtures for the PostgreSQL connector tests: a private schema per test, in-memory hosts.

Every test that touches the database gets its own schema (``hw_t_<random>``), dropped
afterwards, so tests can run in parallel against the one shared server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))


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


REQUIRE_SERVICES = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def password_postgres() -> Iterator[str]:
    """A private PostgreSQL server that checks passwords (scram-sha-256), for the tests of a
    wrong password: the shared server trusts every local connection, so it cannot refuse one.

    Yields a dsn without password for user ``hw`` (password ``right-pass``). Skips when the
    server binaries or a user to run them as are missing (fails under
    HEADWATER_REQUIRE_SERVICES=1).
    """
    initdb = PG_BIN / "initdb"
    as_root = os.geteuid() == 0
    runas = ["runuser", "-u", "postgres", "--"] if as_root and shutil.which("runuser") else []
    if not initdb.exists() or (as_root and not runas):
        message = f"cannot start a private PostgreSQL server ({initdb} or runuser missing)"
        if REQUIRE_SERVICES:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # Outside pytest's tmp dir: the server runs as `postgres`, which cannot enter root's.
    root = Path(tempfile.mkdtemp(prefix="hw-pgpass-"))
    if as_root:
        shutil.chown(root, user="postgres")
    root.chmod(0o755)
    pwfile = root / "pw"
    pwfile.write_text("right-pass\n")
    pwfile.chmod(0o644)
    data = root / "data"
    pg_ctl = str(PG_BIN / "pg_ctl")
    try:
        subprocess.run(
            [
                *runas,
                str(initdb),
                "-D",
                str(data),
                "-A",
                "scram-sha-256",
                "-U",
                "hw",
                f"--pwfile={pwfile}",
            ],
            check=True,
            capture_output=True,
        )
        port = _free_port()  # after initdb (seconds), so nothing else takes it meanwhile
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *runas,
                pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "start",
                "-l",
                str(root / "server.log"),
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://hw@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*runas, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
