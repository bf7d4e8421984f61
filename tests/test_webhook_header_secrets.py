"""End to end: a webhook `headers = {Authorization = "Bearer ..."}` is sent to the receiver
but never shown: not by `headwater validate` (text and JSON), not in the daemon's log
lines at start, reload, refused reload and stop, not by the admin API, `headwater
destinations` or `headwater reload`."""

from __future__ import annotations

import base64
import signal
from collections.abc import Callable, Iterator

import pytest

from headwater.testing import TEST_WRITE_KEY, DaemonProcess, daemon_config, wait_until
from headwater.testing_webhook import WebhookSink

TOKENS = ("s3cret-first-token-1187", "s3cret-second-token-2291", "s3cret-broken-token-3305")
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()}
pytestmark = pytest.mark.timeout(120)


def config(url: str, header: str) -> str:
    return daemon_config(
        f"""
[destinations.hook]
connector = "webhook"
region = "us"
url = "{url}/hook"
headers = {{ Authorization = {header}, X-Tenant = "acme" }}
"""
    )


def send_one(daemon: DaemonProcess, sink: WebhookSink) -> str:
    """Send an event; return the Authorization header the receiver got it with."""
    before = sink.events_delivered
    with daemon.client() as http:
        answer = http.post("/v1/track", json={"userId": "u", "event": "E"}, headers=AUTH)
        assert answer.status_code == 200
    sink.wait_for_events(before + 1)
    return sink.requests[-1].headers["authorization"]


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


def test_header_values_are_used_but_never_shown(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    first, second, broken = TOKENS
    daemon = headwater_daemon(config(sink.url, f'"Bearer {first}"'))
    assert send_one(daemon, sink) == f"Bearer {first}"
    shown: list[str] = []

    for fmt in ("json", "text"):
        checked = daemon.cli("validate", "--format", fmt)
        assert checked.returncode == 0 and "headers.Authorization" in checked.stdout
        shown += [checked.stdout, checked.stderr]
    listed = daemon.cli("destinations", "--format", "json")
    assert listed.returncode == 0 and '"hook"' in listed.stdout
    shown += [listed.stdout, listed.stderr]
    with daemon.client() as http:
        status = http.get("/admin/destinations", headers=daemon.admin_headers())
        assert status.status_code == 200
        shown.append(status.text)

    daemon.config_path.write_text(config(sink.url, f'"Bearer {second}"'))
    applied = daemon.cli("reload")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    shown += [applied.stdout, applied.stderr]
    assert send_one(daemon, sink) == f"Bearer {second}"

    daemon.config_path.write_text(config(sink.url, f'["Bearer {broken}"]'))
    refused = daemon.cli("reload")
    assert refused.returncode == 1 and "headers.Authorization" in refused.stdout
    shown += [refused.stdout, refused.stderr]
    daemon.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: daemon.stderr().count("reload refused") >= 2, timeout=10)
    assert send_one(daemon, sink) == f"Bearer {second}"  # the refusal changed nothing

    assert daemon.terminate() == 0
    log = daemon.stderr() + daemon.stdout()
    assert "reload refused" in log and '"stopped"' in log
    shown.append(log)
    for text in shown:
        for token in TOKENS:
            assert token not in text, text
