"""End to end: the Segment Python SDK -> `headwater serve` (EU workspace) -> the router ->
the amplitude destination -> the Amplitude contract server, with a 429 and a refused event."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from amplitude_contract import API_KEY, AmplitudeAPI

from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess

WRITE_KEY = "amplitude-e2e-key"
pytestmark = pytest.mark.timeout(120)


def config(url: str) -> str:
    return f"""
[workspace]
name = "e2e"
region = "eu"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]

[destinations.product-analytics]
connector = "amplitude"
region = "eu"
endpoint = "{url}"
start = "beginning"
api_key = "${{AMPLITUDE_API_KEY}}"
"""


@pytest.fixture
def server() -> Iterator[AmplitudeAPI]:
    api = AmplitudeAPI(api_key=API_KEY).start()
    yield api
    api.stop()
    assert not api.violations, api.violations


def send(daemon: DaemonProcess) -> dict[str, str]:
    """Send with the real SDK; return messageId -> kind."""
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)
    client = Client(WRITE_KEY, host=daemon.url, max_retries=2)
    sent: dict[str, str] = {}
    for n in range(12):
        ok, msg = client.track(user_id=f"user-{n % 3}", event="Step", properties={"n": n})
        assert ok
        sent[msg["messageId"]] = "track"
    for n in range(3):
        ok, msg = client.identify(user_id=f"user-{n}", traits={"email": f"u{n}@example.com"})
        assert ok
        sent[msg["messageId"]] = "identify"
    ok, msg = client.track(user_id="u1", event="Step")
    assert ok
    sent[msg["messageId"]] = "refused"
    client.flush()
    client.shutdown()
    return sent


def cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args, "--config", str(daemon.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=daemon.workdir,
        env=daemon.env,
    )


def dead_letters(daemon: DaemonProcess, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        listed = cli(
            daemon,
            "dlq",
            "list",
            "product-analytics",
            "--format",
            "json",
            "--data-dir",
            str(daemon.data_dir),
        )
        assert listed.returncode == 0, listed.stderr
        letters: list[dict[str, Any]] = json.loads(listed.stdout)["dead_letters"]
        if len(letters) >= want or time.monotonic() > deadline:
            return letters
        time.sleep(0.2)


def test_sdk_events_reach_amplitude_eu_through_the_router(
    headwater_daemon: Callable[..., DaemonProcess], server: AmplitudeAPI
) -> None:
    server.fail_next(429, {"code": 429, "error": "Too many requests"}, {"Retry-After": "1"})
    daemon = headwater_daemon(config(server.url), env={"AMPLITUDE_API_KEY": API_KEY})
    sent = send(daemon)
    accepted = {m for m, kind in sent.items() if kind != "refused"}

    deadline = time.monotonic() + 60
    while len(server.events) < len(accepted):
        assert time.monotonic() < deadline, len(server.events)
        time.sleep(0.1)
    [letter] = dead_letters(daemon, 1)

    assert sorted(e["insert_id"] for e in server.events) == sorted(accepted)
    assert {e["user_id"] for e in server.events} == {"user-0", "user-1", "user-2"}
    identifies = [e for e in server.events if e["event_type"] == "$identify"]
    assert {e["user_properties"]["$set"]["email"] for e in identifies} == {
        f"u{n}@example.com" for n in range(3)
    }
    assert sent[letter["event"]["messageId"]] == "refused"
    assert "`user_id` shorter than the minimum id length" in letter["reason"]
    output = daemon.stdout_path.read_text() + daemon.stderr_path.read_text()
    assert "product-analytics" in output
    assert API_KEY not in output
