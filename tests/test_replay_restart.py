"""Replay jobs across daemon restarts: kill -9 in the middle of a replay, and a paused job
through a graceful restart. The job's cursor and record are in the log, so after a
restart it goes on where its last commit left it: nothing of the range is skipped (what
was in flight when the daemon died may arrive twice, as with live delivery)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from headwater.replay import list_jobs
from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import WebhookSink

WRITE_KEY = "restart-test-key"
pytestmark = pytest.mark.timeout(180)


def config(sink_url: str | None) -> str:
    body = f"""
[workspace]
name = "restart"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]
"""
    if sink_url:
        body += f'\n[destinations.b]\nconnector = "webhook"\nurl = "{sink_url}/b"\n'
    return body


def ingest(daemon: DaemonProcess, count: int) -> list[str]:
    ids: list[str] = []
    with daemon.client(auth=(WRITE_KEY, "")) as client:
        for start in range(0, count, 500):
            batch = [
                {"type": "track", "event": "Step", "userId": f"u{n % 40}", "messageId": f"h-{n}"}
                for n in range(start, min(count, start + 500))
            ]
            assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
            ids += [e["messageId"] for e in batch]
    return ids


def connect_b(daemon: DaemonProcess, sink: WebhookSink) -> None:
    daemon.config_path.write_text(config(sink.url))
    reloaded = daemon.cli("reload")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr


def status(daemon: DaemonProcess, job: str) -> dict[str, Any]:
    shown = daemon.cli("replay", "status", job, "--format", "json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_kill_9_mid_replay_then_the_job_finishes_after_restart_and_skips_nothing(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        daemon = headwater_daemon(config(None))
        history = ingest(daemon, 20_000)
        connect_b(daemon, sink)
        started = daemon.cli(
            "replay", "start", "-d", "b", "--rate", "5000/s", "--detach", "--format", "json"
        )
        assert started.returncode == 0, started.stderr
        job = json.loads(started.stdout)["id"]
        wait_for(lambda: sink.events_delivered >= 5_000, 30, "a quarter of the replay")
        daemon.kill9()
        at_kill = sink.events_delivered
        assert at_kill < len(history), "the replay had not finished when it was killed"

        with daemon.open_log() as log:  # the job as the crash left it: still running
            (stored,) = list_jobs(log)
            assert stored.state == "running" and stored.id == job

        daemon.start()
        wait_for(lambda: status(daemon, job)["state"] == "done", 60, "the job to finish")
        final = status(daemon, job)
        assert final["progress"]["done"] == final["progress"]["total"] == len(history)
        time.sleep(0.5)
        received = Counter(sink.delivered_ids())
        assert set(received) == set(history), "events of the range were skipped"
        again = sum(n - 1 for n in received.values())
        assert again <= 4_000, f"{again} events sent twice: more than what was in flight"


def test_a_paused_job_stays_paused_through_a_restart_and_resumes_where_it_was(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        daemon = headwater_daemon(config(None))
        history = ingest(daemon, 5_000)
        connect_b(daemon, sink)
        started = daemon.cli(
            "replay", "start", "-d", "b", "--rate", "1000", "--detach", "--format", "json"
        )
        job = json.loads(started.stdout)["id"]
        # slow enough that the pause (a CLI process to start) lands well before the end
        wait_for(lambda: sink.events_delivered >= 500, 30, "part of the replay")
        paused = daemon.cli("replay", "pause", job)
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
        time.sleep(0.5)
        at_pause = sink.events_delivered
        assert daemon.terminate() == 0

        offline = daemon.cli("replay", "list", "--format", "json")  # read from the log
        (row,) = json.loads(offline.stdout)["replays"]
        assert row["state"] == "paused" and 0 < row["progress"]["done"] < len(history)

        daemon.start()
        time.sleep(1.5)
        assert sink.events_delivered == at_pause, "a paused job sent after the restart"
        resumed = daemon.cli("replay", "resume", job)
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: status(daemon, job)["state"] == "done", 60, "the job to finish")
        time.sleep(0.3)
        assert Counter(sink.delivered_ids()) == Counter(history), "lost or repeated events"


def test_a_job_created_without_a_daemon_runs_when_it_starts_and_attach_waits_for_it(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        daemon = headwater_daemon(config(None))
        history = ingest(daemon, 3_000)
        connect_b(daemon, sink)
        assert daemon.terminate() == 0
        created = daemon.cli("replay", "start", "-d", "b", "--format", "json")
        assert created.returncode == 0, created.stderr
        job = json.loads(created.stdout)
        assert job["state"] == "running" and job["progress"]["total"] == len(history)
        missing = daemon.cli("replay", "start", "-d", "nowhere")
        assert missing.returncode == 1 and "no destination 'nowhere'" in missing.stderr

        daemon.start()
        sink.wait_for_events(len(history))
        shown = daemon.cli("replay", "status", job["id"], "--watch")
        assert shown.returncode == 0, shown.stderr
        assert "done" in shown.stdout and "100.0%" in shown.stdout
        again = daemon.cli("replay", "start", "-d", "b", "--from", "1h", "--attach")
        assert again.returncode == 0, again.stderr
        assert "replay 2 -> b: done" in again.stdout, again.stdout
        time.sleep(0.3)
        assert sorted(sink.delivered_ids()) == sorted(history * 2)
