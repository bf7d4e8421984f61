"""A config that does not validate is refused on reload (`headwater reload`, SIGHUP), with
errors that name the file and the key, and the running pipeline is untouched: the same
destinations keep delivering, ingestion keeps answering, and a valid reload afterwards
still applies."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import WebhookSink

WRITE_KEY = "invalid-reload-key"
pytestmark = pytest.mark.timeout(180)


def config(destinations: str = "", extra: str = "") -> str:
    return f"""
[workspace]
name = "reload"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]
{destinations}{extra}"""


def webhook(name: str, url: str, **keys: Any) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'\n[destinations.{name}]\nconnector = "webhook"\nurl = "{url}/{name}"\n{extra}'


def send(daemon: DaemonProcess, tag: str, count: int = 20) -> list[str]:
    batch = [
        {"type": "track", "event": "E", "userId": f"u{n % 3}", "messageId": f"{tag}-{n}"}
        for n in range(count)
    ]
    with daemon.client(auth=(WRITE_KEY, "")) as client:
        assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
    return [e["messageId"] for e in batch]


def destinations(daemon: DaemonProcess) -> list[tuple[str, str]]:
    with daemon.client(headers=daemon.admin_headers()) as admin:
        rows = admin.get("/admin/destinations").json()["destinations"]
    return [(row["id"], row["state"]) for row in rows]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


INVALID = {
    "not TOML": ("[destinations.b\nconnector = 'webhook'", "not valid TOML"),
    "unknown connector": ('\n[destinations.b]\nconnector = "nopehook"\n', "destinations.b"),
    "bad connector option": (
        '\n[destinations.b]\nconnector = "webhook"\nurl = "ftp://example.com/in"\n',
        "destinations.b.url",
    ),
    "bad start": (
        '\n[destinations.b]\nconnector = "webhook"\nurl = "http://127.0.0.1:9/b"\n'
        'start = "yesterday"\n',
        "destinations.b.start",
    ),
    "unset env var": (
        '\n[destinations.b]\nconnector = "webhook"\nurl = "${HW_TEST_UNSET_URL_8121}"\n',
        "HW_TEST_UNSET_URL_8121",
    ),
}


def test_invalid_configs_are_refused_and_the_pipeline_is_untouched(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink_a, WebhookSink() as sink_b:
        running = config(webhook("a", sink_a.url))
        daemon = headwater_daemon(running)
        expected = send(daemon, "before")
        sink_a.wait_for_events(len(expected))
        before = destinations(daemon)
        assert before == [("a", "running")]

        cases = dict(INVALID)
        cases["bad retention"] = (
            running.replace('name = "reload"', 'name = "reload"\nretention = "forever"'),
            "workspace.retention",
        )
        for name, (text, where) in cases.items():
            if name == "not TOML":
                body = running + text
            elif name == "bad retention":
                body = text
            else:  # the bad destination replaces A: a refusal must keep A running
                body = config(text)
            daemon.config_path.write_text(body)
            refused = daemon.cli("reload")
            assert refused.returncode == 1, (name, refused.stdout, refused.stderr)
            assert "refused" in refused.stdout, name
            assert where in refused.stdout, (name, where, refused.stdout)
            assert str(daemon.config_path) in refused.stdout, name
            assert destinations(daemon) == before, name
            expected += send(daemon, name.replace(" ", "_"))
            sink_a.wait_for_events(len(expected))

        # SIGHUP with an invalid file: refused too, logged, the daemon keeps running
        daemon.config_path.write_text(config(INVALID["bad connector option"][0]))
        daemon.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: "reload refused" in daemon.stderr(), 10, "the refusal in the log")
        assert daemon.running()
        assert destinations(daemon) == before
        expected += send(daemon, "after_sighup")
        sink_a.wait_for_events(len(expected))

        # a valid file after all that still applies (by SIGHUP): B is added, A stays
        daemon.config_path.write_text(config(webhook("a", sink_a.url) + webhook("b", sink_b.url)))
        daemon.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: len(destinations(daemon)) == 2, 10, "B to be added")
        new = send(daemon, "both")
        sink_b.wait_for_events(len(new))
        expected += new
        sink_a.wait_for_events(len(expected))
        time.sleep(0.3)
        assert sorted(sink_a.delivered_ids()) == sorted(expected), "A lost or repeated events"
        assert sorted(sink_b.delivered_ids()) == sorted(new), "B starts at now"


def test_reload_without_a_running_daemon_says_so(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = headwater_daemon(config())
    daemon.terminate()
    stopped = daemon.cli("reload")
    assert stopped.returncode == 1 and "no daemon runs" in stopped.stderr
