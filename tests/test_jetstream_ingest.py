"""Ingest on JetStream when NATS is gone: the client is told to come back (503 with
Retry-After), never a 200 for what the stream did not acknowledge, and the same batch sent
again after NATS is back is stored once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headwater.log import JetStreamLog
from headwater.log._nats_connect import NatsOptions
from headwater.testing import TEST_CONFIG, TEST_WRITE_KEY, DaemonProcess
from headwater.testing_nats import NatsServer, nats_server_binary

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    if nats_server_binary() is None:
        if os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1":
            pytest.fail("nats-server is not installed and HEADWATER_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not installed")
    nats = NatsServer(tmp_path / "nats" / "store").start()
    yield nats
    nats.stop()


def test_without_nats_the_daemon_answers_503_and_a_resend_is_stored_once(
    server: NatsServer, tmp_path: Path
) -> None:
    config = (
        TEST_CONFIG
        + f'\n[log]\nbackend = "jetstream"\nservers = ["{server.url}"]\nack_timeout = 2\n'
    )
    daemon = DaemonProcess(config, tmp_path / "daemon").start()
    batch = [
        {"type": "track", "event": "E", "userId": "u", "messageId": f"m-{i}"} for i in range(5)
    ]
    try:
        with httpx.Client(base_url=daemon.url, auth=(TEST_WRITE_KEY, ""), timeout=30) as client:
            assert client.post("/v1/batch", json={"batch": batch[:2]}).status_code == 200
            server.kill()
            refused = client.post("/v1/batch", json={"batch": batch})
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) > 0
            server.start()
            # as a client does: send again while told to come back (the daemon's NATS
            # connection may need longer than the 2 s ack timeout to come back)
            deadline = time.monotonic() + 30
            while (again := client.post("/v1/batch", json={"batch": batch})).status_code == 503:
                assert time.monotonic() < deadline, again.text
                time.sleep(float(again.headers["retry-after"]) / 4)
            assert again.status_code == 200, again.text
    finally:
        daemon.stop()
    with JetStreamLog(NatsOptions(servers=(server.url,)), "headwater", readonly=True) as log:
        assert [r.event["messageId"] for r in log.scan()] == [f"m-{i}" for i in range(5)]
