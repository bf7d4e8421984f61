"""Replay jobs on the JetStream backend, through real daemons, a real nats-server started
here and a real webhook receiver: a job sends exactly its time range, is visible with the
same progress from every daemon, and a job whose daemon is killed with SIGKILL is finished
by the other daemon (docs/scale.md, "Replay jobs")."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.testing import TEST_CONFIG, TEST_WRITE_KEY, DaemonProcess, wait_until
from headwater.testing_nats import NatsServer, nats_server_binary

pytestmark = pytest.mark.timeout(120)


class Sink:
    """A webhook receiver that records every event it accepted, in order; ``delay``
    seconds per request make a replay take long enough to be interrupted."""

    def __init__(self, delay: float = 0.0, *, refuse_poison: bool = False) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.refuse_poison = refuse_poison
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if delay:
                    time.sleep(delay)
                batch = json.loads(body)["batch"]
                refused = sink.refuse_poison and any(
                    e.get("properties", {}).get("poison") for e in batch
                )
                if not refused:
                    with sink.lock:
                        sink.accepted.extend(batch)
                self.send_response(400 if refused else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/in"

    def ids(self) -> list[str]:
        with self.lock:
            return [e["messageId"] for e in self.accepted]


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed (or set HEADWATER_NATS_SERVER)")
    server = NatsServer(tmp_path_factory.mktemp("nats") / "store").start()
    yield server
    server.stop()


def log_table(nats: NatsServer, stream: str) -> str:
    return f"""
[log]
backend = "jetstream"
servers = ["{nats.url}"]
stream = "{stream}"
partitions = 4
"""


def with_destination(nats: NatsServer, stream: str, sink: Sink) -> str:
    # start = "now": live delivery skips the history, so what the sink gets is the replay's
    return (
        TEST_CONFIG
        + log_table(nats, stream)
        + f"""
[destinations.archive]
connector = "webhook"
url = "{sink.url}"
start = "now"
batch_size = 5
timeout = 5
"""
    )


def events(first: int, last: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Step",
            "userId": f"user-{n % 3}",
            "messageId": f"m-{n}",
            "properties": {"n": n},
        }
        for n in range(first, last + 1)
    ]


def send(daemon: DaemonProcess, batch: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{daemon.url}/v1/batch", json={"batch": batch}, auth=(TEST_WRITE_KEY, ""), timeout=30
    )
    assert response.status_code == 200, response.text


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def ingest_history(nats: NatsServer, stream: str, workdir: Path) -> tuple[str, str]:
    """Events m-1..m-20, then m-21..m-100, then m-101..m-120, through a daemon without
    destinations; returns the times that cut out the middle part."""
    daemon = DaemonProcess(TEST_CONFIG + log_table(nats, stream), workdir).start()
    try:
        send(daemon, events(1, 20))
        time.sleep(0.05)
        start = now_iso()
        time.sleep(0.05)
        for first in range(21, 101, 20):
            send(daemon, events(first, first + 19))
        time.sleep(0.05)
        end = now_iso()
        time.sleep(0.05)
        send(daemon, events(101, 120))
    finally:
        assert daemon.terminate() == 0
    return start, end


def admin(daemon: DaemonProcess, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method, f"{daemon.url}{path}", json=body, headers=daemon.admin_headers(), timeout=30
    )
    assert response.status_code < 300, response.text
    return response.json()


def runs_it(daemon: DaemonProcess, job_id: str) -> bool:
    return f"replay {job_id}: run by this daemon" in daemon.stdout() + daemon.stderr()


def test_a_replay_sends_exactly_its_range_and_every_daemon_shows_it(
    nats: NatsServer, tmp_path: Path
) -> None:
    stream = f"hwreplay-{uuid.uuid4().hex[:8]}"
    start, end = ingest_history(nats, stream, tmp_path / "ingest")
    sink = Sink()
    config = with_destination(nats, stream, sink)
    daemons = [DaemonProcess(config, tmp_path / f"d{i}").start() for i in range(2)]
    try:
        created = admin(
            daemons[0],
            "POST",
            "/admin/replays",
            {"destination": "archive", "from": start, "to": end, "rate": "10/s"},
        )
        job_id = created["id"]
        assert (created["first_seq"], created["last_seq"]) == (21, 100)
        expected = [f"m-{n}" for n in range(21, 101)]

        # pause and resume through the daemon that does not run the job (at 10/s the job
        # takes 8 s: room for a slow start and pause on a loaded machine)
        wait_until(lambda: any(runs_it(d, job_id) for d in daemons), timeout=15)
        runner, other = daemons if runs_it(daemons[0], job_id) else daemons[::-1]
        paused = admin(other, "POST", f"/admin/replays/{job_id}/pause")
        assert paused["state"] == "paused", paused
        assert admin(runner, "GET", f"/admin/replays/{job_id}")["state"] == "paused"
        so_far = len(sink.ids())
        assert so_far < 80, "the job ended before the pause; make it slower"
        time.sleep(0.5)
        assert len(sink.ids()) == so_far, "sent while paused"
        resumed = admin(other, "POST", f"/admin/replays/{job_id}/resume")
        assert resumed["state"] == "running", resumed

        def done_everywhere() -> bool:
            return all(
                admin(d, "GET", f"/admin/replays/{job_id}")["state"] == "done" for d in daemons
            )

        wait_until(done_everywhere, timeout=30, describe=lambda: sink.ids())
        assert sorted(sink.ids()) == sorted(expected)  # the range, each event once
        for user in ("user-0", "user-1", "user-2"):  # per-user order within the replay
            order = [e["properties"]["n"] for e in sink.accepted if e["userId"] == user]
            assert order == sorted(order), f"{user}: {order}"
        views = [admin(d, "GET", "/admin/replays")["replays"] for d in daemons]
        assert [v["id"] for v in views[0]] == [v["id"] for v in views[1]] == [job_id]
        for view in views:
            assert view[0]["progress"]["done"] == view[0]["progress"]["total"] == 80
            assert view[0]["delivered"] == 80
        listed = daemons[1].cli("replay", "list")
        assert listed.returncode == 0, listed.stderr
        assert job_id in listed.stdout and "done" in listed.stdout, listed.stdout
    finally:
        for daemon in daemons:
            daemon.stop()
        sink.server.shutdown()


def test_a_replay_survives_the_kill_of_its_daemon(nats: NatsServer, tmp_path: Path) -> None:
    stream = f"hwreplay-{uuid.uuid4().hex[:8]}"
    start, end = ingest_history(nats, stream, tmp_path / "ingest")
    sink = Sink(delay=0.05)
    config = with_destination(nats, stream, sink)
    daemons = [DaemonProcess(config, tmp_path / f"d{i}").start() for i in range(2)]
    try:
        created = admin(
            daemons[0],
            "POST",
            "/admin/replays",
            {"destination": "archive", "from": start, "to": end, "rate": "25/s"},
        )
        job_id = created["id"]
        wait_until(lambda: any(runs_it(d, job_id) for d in daemons), timeout=15)
        runner, other = daemons if runs_it(daemons[0], job_id) else daemons[::-1]
        wait_until(lambda: len(sink.ids()) >= 15, timeout=15)
        runner.kill9()
        killed_at = len(sink.ids())
        assert killed_at < 80, "the job ended before the kill; make it slower"
        status = admin(other, "GET", f"/admin/replays/{job_id}")
        assert status["state"] == "running"  # visible from the survivor, mid-way

        wait_until(
            lambda: admin(other, "GET", f"/admin/replays/{job_id}")["state"] == "done",
            timeout=45,
            describe=lambda: (len(sink.ids()), other.stderr()[-2000:]),
        )
        assert runs_it(other, job_id)
        expected = {f"m-{n}" for n in range(21, 101)}
        received = sink.ids()
        assert set(received) == expected  # all of the range, nothing outside it
        # at least once: what the dead runner sent but had not committed is sent again
        assert len(received) - len(expected) <= 40, len(received)
        final = admin(other, "GET", f"/admin/replays/{job_id}")
        assert final["progress"]["done"] == final["progress"]["total"] == 80
    finally:
        for daemon in daemons:
            daemon.stop()
        sink.server.shutdown()


def test_pause_resume_and_dlq_redrive_on_jetstream(nats: NatsServer, tmp_path: Path) -> None:
    stream = f"hwreplay-{uuid.uuid4().hex[:8]}"
    sink = Sink(refuse_poison=True)
    config = (
        TEST_CONFIG
        + log_table(nats, stream)
        + f"""
[destinations.hook]
connector = "webhook"
url = "{sink.url}"
start = "beginning"
batch_size = 1
timeout = 5
"""
    )
    daemons = [DaemonProcess(config, tmp_path / f"d{i}").start() for i in range(2)]
    try:
        batch = events(1, 10)
        for event in batch:
            if event["messageId"] in ("m-3", "m-7"):
                event["properties"]["poison"] = True
        send(daemons[0], batch)
        wait_until(lambda: len(sink.ids()) == 8, timeout=30, describe=sink.ids)
        listed = daemons[1].cli("dlq", "list", "hook", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        wait_until(lambda: "m-7" in daemons[1].cli("dlq", "list", "hook").stdout, timeout=10)

        paused = daemons[0].cli("destinations", "pause", "hook")
        assert paused.returncode == 0, paused.stderr

        def holds_nothing(daemon: DaemonProcess) -> bool:
            status = admin(daemon, "GET", "/admin/shared-delivery")
            hook = status["destinations"]["hook"]
            return bool(hook["paused"] and hook["partitions"] == [])

        wait_until(lambda: all(holds_nothing(d) for d in daemons), timeout=15)
        send(daemons[1], events(11, 15))
        redrive = daemons[1].cli("dlq", "redrive", "hook")  # converted while paused
        assert redrive.returncode == 0, redrive.stderr
        assert "re-queued as a replay job" in redrive.stdout, redrive.stdout
        sink.refuse_poison = False  # "the cause was fixed"
        jobs = admin(daemons[0], "GET", "/admin/replays")["replays"]
        assert len(jobs) == 1 and jobs[0]["pending_retries"] == 2, jobs
        time.sleep(1.0)
        assert len(sink.ids()) == 8, "delivered while paused"

        resumed = admin(daemons[1], "POST", "/admin/destinations/hook/resume")  # the API too
        assert resumed["paused"] is False, resumed
        expected = {f"m-{n}" for n in range(1, 16)}
        wait_until(lambda: set(sink.ids()) == expected, timeout=30, describe=sink.ids)
        job_id = jobs[0]["id"]
        for daemon in daemons:
            wait_until(
                lambda d=daemon: admin(d, "GET", f"/admin/replays/{job_id}")["state"] == "done",
                timeout=15,
            )
        final = admin(daemons[1], "GET", f"/admin/replays/{job_id}")
        assert final["delivered"] == 2 and final["dead_lettered"] == 0, final
        assert "m-7" not in daemons[0].cli("dlq", "list", "hook").stdout
    finally:
        for daemon in daemons:
            daemon.stop()
        sink.server.shutdown()
