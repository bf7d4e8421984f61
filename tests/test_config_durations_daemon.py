"""End to end: a config with compound durations (`max_age = "1h30m"`, `retention = "1d12h"`)
passes `headwater validate`, and `headwater serve` runs with it: the destination retries
and delivers instead of failing to start on a value validate let through."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.testing import TEST_WRITE_KEY, DaemonProcess, daemon_config
from headwater.testing_webhook import WebhookSink
from headwater_spec import HttpRequest

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()}
pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


def test_compound_durations_validate_and_the_daemon_delivers_with_them(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink, tmp_path: Path
) -> None:
    text = daemon_config(
        f"""
[destinations.hook]
connector = "webhook"
region = "us"
url = "{sink.url}/hook"
max_age = "1h30m"
""",
    ).replace('region = "us"\n', 'region = "us"\nretention = "1d12h"\n', 1)
    assert 'retention = "1d12h"' in text
    path = tmp_path / "headwater.toml"
    path.write_text(text)
    checked = subprocess.run(
        [sys.executable, "-m", "headwater", "validate", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["errors"] == [], checked.stdout

    failures = {"left": 1}

    def fail_once(request: HttpRequest, events: list[dict[str, Any]]) -> Any:
        if events and failures["left"]:
            failures["left"] -= 1
            return (503, b"busy", [])
        return None

    sink.behaviour = fail_once
    daemon = headwater_daemon(text)
    with daemon.client() as http:
        sent = http.post("/v1/track", json={"userId": "u", "event": "E"}, headers=AUTH)
        assert sent.status_code == 200
        sink.wait_for_events(1)
        status = http.get("/admin/destinations/hook", headers=daemon.admin_headers()).json()
    assert any(r.status == 503 for r in sink.requests), "the retry was exercised"
    assert status["state"] == "running" and status["dead_letters"] == 0, status
