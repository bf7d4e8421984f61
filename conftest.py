"""Fixtures shared by every test folder: the local services the tests talk to.

A test that needs PostgreSQL or NATS asks for `postgres_dsn` / `nats_url`. When the service
is not reachable the test is skipped with the reason, unless HEADWATER_REQUIRE_SERVICES=1
(as in CI), where a missing service is a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from headwater.log import AnyLog

REQUIRE_SERVICES = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"

# Property tests judge what the code does, not how fast: hypothesis's default 200 ms
# deadline per example fails a run that a GC pass or a busy CI machine slows down.
settings.register_profile("headwater", deadline=None)
settings.load_profile("headwater")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or fail, when services are required) unless host:port accepts connections."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and HEADWATER_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    dsn = os.environ.get("HEADWATER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    need_service("PostgreSQL", "127.0.0.1", 5432)
    return dsn


@pytest.fixture(scope="session")
def nats_url() -> str:
    url = os.environ.get("HEADWATER_TEST_NATS", "nats://127.0.0.1:4222")
    need_service("NATS", "127.0.0.1", 4222)
    return url


@pytest.fixture(params=["lmdb", "jetstream"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, AnyLog]]:
    """A fresh log on each backend, as ``(name, log)``: LMDB in a temp dir, JetStream on a
    stream of its own (dropped after the test) on the local NATS server."""
    from headwater.log import JetStreamLog, LmdbLog
    from headwater.log._nats_connect import NatsOptions

    if request.param == "lmdb":
        with LmdbLog(tmp_path / "data", sync=False) as log:
            yield "lmdb", log
        return
    options = NatsOptions(servers=(request.getfixturevalue("nats_url"),))
    stream = f"hwtest-{uuid.uuid4().hex[:12]}"
    js = JetStreamLog(options, stream)
    try:
        yield "jetstream", js
    finally:
        js.close()
        with JetStreamLog(options, stream) as cleanup:
            cleanup.drop()


@pytest.fixture
def headwater_daemon(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Start real `headwater serve` subprocesses: ``headwater_daemon(config_text=...)``.

    Each call gets its own work dir (config file, data dir, captured output) and a free
    port; every daemon started is stopped at teardown. Without ``config_text`` the daemon
    has one tracking-api source `web` with key ``headwater.testing.TEST_WRITE_KEY``. See
    ``headwater.testing.DaemonProcess`` for kill9/terminate/restart and reading the log.
    """
    from headwater.testing import TEST_CONFIG, DaemonProcess

    started: list[DaemonProcess] = []

    def start(config_text: str = TEST_CONFIG, **kwargs):  # type: ignore[no-untyped-def]
        daemon = DaemonProcess(config_text, tmp_path_factory.mktemp("daemon"), **kwargs)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()
