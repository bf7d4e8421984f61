"""Shared delivery on JetStream through real daemons and a real webhook receiver: retries
and dead letters keep per-user order, and a daemon stopped cleanly hands its partitions to
the other at once. The NATS service of the test machine is used (a stream per test)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.log import JetStreamLog
from headwater.log._nats_connect import NatsOptions
from headwater.router import list_dead_letters
from headwater.testing import TEST_CONFIG, TEST_WRITE_KEY, DaemonProcess

pytestmark = pytest.mark.timeout(120)


class FlakySink:
    """Answers 503 to every ``fail_every``-th request and 400 to a batch holding a poison
    event; records what it accepted, in order."""

    def __init__(self, fail_every: int = 0) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                batch = json.loads(body)["batch"]
                with sink.lock:
                    sink.requests += 1
                    if any(e.get("properties", {}).get("poison") for e in batch):
                        status = 400
                    elif fail_every and sink.requests % fail_every == 0:
                        status = 503
                    else:
                        status = 200
                        sink.accepted.extend(batch)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/in"

    def ids(self) -> set[str]:
        with self.lock:
            return {e["messageId"] for e in self.accepted}

    def first_arrivals(self) -> dict[str, list[int]]:
        seen: set[str] = set()
        out: dict[str, list[int]] = {}
        with self.lock:
            for event in self.accepted:
                if event["messageId"] not in seen:
                    seen.add(event["messageId"])
                    out.setdefault(event["userId"], []).append(event["properties"]["n"])
        return out


@pytest.fixture
def stream(nats_url: str) -> Iterator[str]:
    name = f"hwtest-{uuid.uuid4().hex[:10]}"
    yield name
    with JetStreamLog(NatsOptions(servers=(nats_url,)), name) as log:
        log.drop()


def config_for(nats_url: str, stream: str, sink: FlakySink, extra: str = "") -> str:
    return (
        TEST_CONFIG
        + f"""
[log]
backend = "jetstream"
servers = ["{nats_url}"]
stream = "{stream}"
partitions = 4

[destinations.hook]
connector = "webhook"
url = "{sink.url}"
start = "beginning"
timeout = 5
{extra}
"""
    )


def send(daemon: DaemonProcess, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{daemon.url}/v1/batch", json={"batch": events}, auth=(TEST_WRITE_KEY, ""), timeout=30
    )
    assert response.status_code == 200, response.text


def events_for(
    users: int, per_user: int, *, poison: frozenset[tuple[int, int]] = frozenset()
) -> Iterator[list[dict[str, Any]]]:
    for n in range(1, per_user + 1):
        yield [
            {
                "type": "track",
                "event": "Step",
                "userId": f"user-{u}",
                "messageId": f"user-{u}-{n}",
                "properties": {"n": n, **({"poison": True} if (u, n) in poison else {})},
            }
            for u in range(users)
        ]


def wait_for(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_retries_and_dead_letters_keep_each_users_order(
    nats_url: str, stream: str, tmp_path: Path
) -> None:
    sink = FlakySink(fail_every=4)
    poison = frozenset({(1, 3), (4, 7)})
    daemon = DaemonProcess(
        config_for(nats_url, stream, sink, "batch_size = 1"), tmp_path / "daemon"
    ).start()
    try:
        sent: set[str] = set()
        for batch in events_for(6, 10, poison=poison):
            send(daemon, batch)
            sent |= {e["messageId"] for e in batch if not e["properties"].get("poison")}
        wait_for(lambda: sent <= sink.ids())
        with JetStreamLog(NatsOptions(servers=(nats_url,)), stream) as log:
            wait_for(lambda: len(list_dead_letters(log, "hook")) == 2)
            letters = list_dead_letters(log, "hook")
        assert {letter.event["messageId"] for letter in letters} == {"user-1-3", "user-4-7"}
        assert all("400" in letter.reason for letter in letters)
        for user, order in sink.first_arrivals().items():
            assert order == sorted(order), f"{user}: {order}"
    finally:
        daemon.stop()
        sink.server.shutdown()


def test_a_daemon_stopped_cleanly_hands_its_partitions_over(
    nats_url: str, stream: str, tmp_path: Path
) -> None:
    sink = FlakySink()
    config = config_for(nats_url, stream, sink)
    daemons = [DaemonProcess(config, tmp_path / f"d{i}").start() for i in range(2)]
    try:
        sent: set[str] = set()
        batches = list(events_for(8, 30))
        for i, batch in enumerate(batches):
            if i == len(batches) // 2:
                assert daemons[0].terminate() == 0
            send(daemons[1] if i >= len(batches) // 2 else daemons[i % 2], batch)
            sent |= {e["messageId"] for e in batch}
        wait_for(lambda: sent <= sink.ids())
        for user, order in sink.first_arrivals().items():
            assert order == sorted(order), f"{user}: {order}"

        def survivor_holds_everything() -> bool:
            status = httpx.get(
                f"{daemons[1].url}/admin/shared-delivery",
                headers=daemons[1].admin_headers(),
                timeout=10,
            ).json()
            hook = status["destinations"]["hook"]
            return bool(hook["partitions"] == [0, 1, 2, 3] and hook["lag"] == 0)

        wait_for(survivor_holds_everything)
    finally:
        for daemon in daemons:
            daemon.stop()
        sink.server.shutdown()
