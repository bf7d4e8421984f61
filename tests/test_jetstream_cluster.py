"""Two daemons on a 3-node JetStream cluster, delivering to a webhook sink, through crashes.

Clients send events for many users to both daemons (a user's next event only after the
previous one got a 200, and a failed request is sent again, to another daemon, with the
same messageIds, as SDKs do). Mid-load the NATS node leading the stream and one daemon are
killed with SIGKILL. Then: every event that got a 200 reached the sink at least once, and
each user's events reached it in the order they were accepted (ignoring repeats of events
already seen, which at-least-once delivery allows).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater import testing_nats
from headwater.testing import TEST_CONFIG, TEST_WRITE_KEY, DaemonProcess
from headwater.testing_nats import NatsCluster, free_port, nats_server_binary

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

USERS = 40
CLIENTS = 4
BATCH = 20


class Sink:
    """A webhook receiver that records every event in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    batch = json.loads(body)["batch"]
                except ValueError:  # cut short: its sender was killed mid-request
                    return
                with sink.lock:
                    sink.events.extend(batch)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/in"

    def message_ids(self) -> set[str]:
        with self.lock:
            return {e["messageId"] for e in self.events}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Load:
    """Client threads sending users' events, each user's strictly one after the other."""

    def __init__(self, daemons: list[DaemonProcess]) -> None:
        self.daemons = daemons
        self.accepted: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failures = 0
        self.threads = [
            threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(CLIENTS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)

    def _client(self, number: int) -> None:
        users = [f"user-{u}" for u in range(USERS) if u % CLIENTS == number]
        counters = dict.fromkeys(users, 0)
        turn = number
        client = httpx.Client(timeout=45.0, auth=(TEST_WRITE_KEY, ""))
        while not self.stop.is_set():
            batch = []
            for i in range(BATCH):
                user = users[i % len(users)]
                counters[user] += 1
                batch.append(
                    {
                        "type": "track",
                        "event": "Step",
                        "userId": user,
                        "messageId": f"{user}-{counters[user]}",
                        "properties": {"n": counters[user]},
                    }
                )
            while True:  # the same batch until some daemon accepts it
                live = [d for d in self.daemons if d.running()]
                daemon = live[turn % len(live)]
                turn += 1
                try:
                    response = client.post(f"{daemon.url}/v1/batch", json={"batch": batch})
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                with self.lock:
                    self.failures += 1
                time.sleep(0.2)
            with self.lock:
                for event in batch:
                    self.accepted.setdefault(event["userId"], []).append(event["properties"]["n"])
        client.close()

    def accepted_ids(self) -> set[str]:
        with self.lock:
            return {f"{u}-{n}" for u, ns in self.accepted.items() for n in ns}


def _delivered_by(daemon: DaemonProcess) -> float:
    """Events this daemon delivered so far (its Prometheus counter)."""
    text = httpx.get(f"{daemon.url}/metrics", timeout=10.0).text
    prefix = 'headwater_shared_delivery_events_total{destination="hook",outcome="delivered"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def _stream_leader(urls: list[str], stream: str) -> str:
    import nats

    nc = await nats.connect(urls)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        return str(info.cluster.leader)
    finally:
        await nc.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    if nats_server_binary() is None:
        if os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1":
            pytest.fail("nats-server is not installed and HEADWATER_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not installed")
    nats = NatsCluster(tmp_path / "nats").start()
    yield nats
    nats.stop()


def test_a_cluster_whose_port_was_taken_starts_again_on_other_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scaffolding above: a port picked free and taken before its server bound it
    (one CI run) must not fail the test that needs the cluster."""
    if nats_server_binary() is None:
        if os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1":
            pytest.fail("nats-server is not installed and HEADWATER_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(testing_nats, "free_port", lambda: next(ports, None) or free_port())
        nats = NatsCluster(tmp_path / "nats").start()
        try:
            assert len({server.port for server in nats.servers}) == 3
            assert taken.getsockname()[1] not in {s.cluster_port for s in nats.servers}
        finally:
            nats.stop()


def test_acknowledged_events_survive_a_nats_node_and_a_daemon_killed_mid_load(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    sink = Sink()
    stream = f"hw-{uuid.uuid4().hex[:8]}"
    servers = ", ".join(f'"{url}"' for url in cluster.urls)
    config = (
        TEST_CONFIG
        + f"""
[log]
backend = "jetstream"
servers = [{servers}]
stream = "{stream}"
replicas = 3
partitions = 8
ack_timeout = 20

[destinations.hook]
connector = "webhook"
url = "{sink.url}"
start = "beginning"
timeout = 5
max_attempts = 1000
"""
    )
    daemons = [DaemonProcess(config, tmp_path / f"daemon-{i}") for i in range(2)]
    load = Load(daemons)
    try:
        for daemon in daemons:
            daemon.start()
        load.start()
        time.sleep(2.0)
        deadline = time.monotonic() + 20
        while not all(_delivered_by(d) > 0 for d in daemons):  # both share the work
            assert time.monotonic() < deadline, "a daemon delivered nothing"
            time.sleep(0.2)
        while len(load.accepted_ids()) <= 500:  # enough load to mean anything
            assert time.monotonic() < deadline, "the load was too small to mean anything"
            time.sleep(0.2)
        leader = asyncio.run(_stream_leader(cluster.urls, stream))
        next(s for s in cluster.servers if s.name == leader).kill()
        daemons[0].kill9()
        time.sleep(4.0)
        load.finish()
        accepted = load.accepted_ids()
        assert len(accepted) > 500, "the load was too small to mean anything"
        load_done = time.monotonic()
        deadline = load_done + 90
        while time.monotonic() < deadline and not accepted <= sink.message_ids():
            time.sleep(0.25)
        caught_up = time.monotonic() - load_done

        missing = accepted - sink.message_ids()
        assert not missing, f"{len(missing)} acknowledged events lost: {sorted(missing)[:5]}"
        with sink.lock:
            arrivals = list(sink.events)
        first_seen: dict[str, list[int]] = {}
        seen: set[str] = set()
        for event in arrivals:
            if event["messageId"] not in seen:
                seen.add(event["messageId"])
                first_seen.setdefault(event["userId"], []).append(event["properties"]["n"])
        for user, order in first_seen.items():
            assert order == sorted(order), f"{user}'s events arrived out of order: {order}"
        duplicates = len(arrivals) - len({e["messageId"] for e in arrivals})
        print(
            f"accepted {len(accepted)}, arrivals {len(arrivals)}, duplicates {duplicates}, "
            f"client retries {load.failures}, killed NATS leader {leader}, "
            f"caught up {caught_up:.1f} s after the load"
        )
    finally:
        load.stop.set()
        for daemon in daemons:
            daemon.stop()
        sink.close()
        if os.environ.get("HW_DEBUG"):
            print(daemons[1].stderr()[-20000:])
