"""Durability under failure: kill -9 while clients send, and SIGTERM under load.

kill -9 proves no request is answered before its commit (page-cache loss needs a power
cut, which a test cannot make; the fsync itself is the log's, tested there).

Clients send 10-event batches on keep-alive connections from several threads and record
every messageId whose request got 200. Whatever happens to the daemon, each of those must
be in the log afterwards.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from headwater.testing import TEST_WRITE_KEY, DaemonProcess

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()}
SENDERS = 4
BATCH = 10


class Load:
    """Bounded load: SENDERS threads, each until stopped, the daemon is gone, or 15 s."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[str] = []
        self.statuses: list[int] = []
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, daemon=True) for _ in range(SENDERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(20)

    def wait_for(self, acked: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < acked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acked) >= acked, f"only {len(self.acked)} events acknowledged"

    def _send(self) -> None:
        deadline = time.monotonic() + 60  # a bound; the test stops the load long before
        failures_in_a_row = 0
        with httpx.Client(base_url=self.url, timeout=10.0, headers=AUTH) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                ids = [str(uuid.uuid4()) for _ in range(BATCH)]
                batch = [
                    {"type": "track", "userId": f"u{i}", "event": "Load", "messageId": m}
                    for i, m in enumerate(ids)
                ]
                try:
                    response = client.post("/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    with self.lock:
                        self.errors += 1
                    failures_in_a_row += 1
                    if failures_in_a_row > 20:
                        return
                    time.sleep(0.02)
                    continue
                failures_in_a_row = 0
                with self.lock:
                    self.statuses.append(response.status_code)
                    if response.status_code == 200:
                        assert response.json()["accepted"] == BATCH
                        self.acked.extend(ids)


@pytest.mark.timeout(120)
def test_kill_9_while_clients_send_loses_no_acknowledged_event(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = headwater_daemon()
    with Load(daemon.url) as load:
        load.wait_for(2000)
        daemon.kill9()
        acked_at_kill = len(load.acked)
    assert acked_at_kill >= 2000
    daemon.start()  # recovery: the same data dir, a fresh process
    stored = daemon.events_by_message_id()
    missing = [m for m in load.acked if m not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    assert all(len(stored[m]) == 1 for m in load.acked)
    # the daemon takes traffic again after the crash
    with daemon.client(headers=AUTH) as client:
        again = client.post("/v1/track", json={"userId": "u", "event": "After"})
    assert again.status_code == 200


@pytest.mark.timeout(120)
def test_sigterm_under_load_is_graceful(headwater_daemon: Callable[..., DaemonProcess]) -> None:
    daemon = headwater_daemon()
    with Load(daemon.url) as load:
        load.wait_for(1000)
        code = daemon.terminate()
        time.sleep(0.2)
    assert code == 0, daemon.stderr()
    assert not [s for s in load.statuses if s >= 500], "a 5xx was answered before exit"
    stored = daemon.events_by_message_id()
    missing = [m for m in load.acked if m not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost"
    lines = daemon.stderr()
    assert '"msg": "stopping"' in lines and '"msg": "stopped"' in lines
    assert TEST_WRITE_KEY not in lines
