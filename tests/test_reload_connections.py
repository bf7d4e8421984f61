"""Connections changing while the daemon runs: sources added and removed, a destination
removed and connected again (it resumes from its kept cursor), forgotten (it starts
afresh), added with ``start = "beginning"`` (it gets the history), paused and resumed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import WebhookSink

WEB_KEY = "conn-web-key"
APP_KEY = "conn-app-key"
pytestmark = pytest.mark.timeout(180)


def config(*, app: bool = False, **destinations: dict[str, Any]) -> str:
    body = f"""
[workspace]
name = "connections"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WEB_KEY}"]
"""
    if app:
        body += f'\n[sources.app]\nconnector = "tracking-api"\nwrite_keys = ["{APP_KEY}"]\n'
    for name, keys in destinations.items():
        body += f"\n[destinations.{name}]\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in {"connector": "webhook", **keys}.items()
        )
    return body


def reload(daemon: DaemonProcess, text: str) -> dict[str, Any]:
    daemon.config_path.write_text(text)
    done = daemon.cli("reload", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def post(daemon: DaemonProcess, key: str, tag: str, count: int = 10) -> tuple[int, list[str]]:
    batch = [
        {"type": "track", "event": "E", "userId": f"u{n % 3}", "messageId": f"{tag}-{n}"}
        for n in range(count)
    ]
    with daemon.client(auth=(key, "")) as client:
        response = client.post("/v1/batch", json={"batch": batch})
    return response.status_code, [e["messageId"] for e in batch]


def send(daemon: DaemonProcess, tag: str, count: int = 10) -> list[str]:
    status, ids = post(daemon, WEB_KEY, tag, count)
    assert status == 200
    return ids


def test_sources_are_added_and_removed_while_ingestion_goes_on(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    daemon = headwater_daemon(config())
    assert post(daemon, APP_KEY, "before")[0] == 401
    changes = reload(daemon, config(app=True))["changes"]
    assert changes["sources"]["added"] == ["app"]
    status, app_ids = post(daemon, APP_KEY, "app")
    assert status == 200
    send(daemon, "web")
    reload(daemon, config())
    assert post(daemon, APP_KEY, "after")[0] == 401, "a removed source still takes events"
    send(daemon, "web-after")
    sources = {r.event["messageId"]: r.source for r in daemon.records()}
    assert {sources[mid] for mid in app_ids} == {"app"}
    with daemon.client(headers=daemon.admin_headers()) as admin:
        listed = admin.get("/admin/sources").json()["sources"]
    assert [s["id"] for s in listed] == ["web"]


def test_removed_destination_keeps_its_place_until_forgotten(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        hook = {"url": f"{sink.url}/a"}
        daemon = headwater_daemon(config(a=hook))
        first = send(daemon, "one")
        sink.wait_for_events(len(first))
        assert reload(daemon, config())["changes"]["destinations"]["removed"] == ["a"]
        missed = send(daemon, "while-removed")
        time.sleep(0.5)
        assert sink.events_delivered == len(first)
        listed = daemon.cli("destinations")
        assert "a: no longer configured" in listed.stdout, listed.stdout

        forgotten = daemon.cli("destinations", "forget", "a", "--yes")
        assert forgotten.returncode == 0, forgotten.stderr  # a is not configured any more
        assert "forgotten" in forgotten.stdout
        # ...so it starts afresh when connected again: "now" means only new events
        reload(daemon, config(a=hook))
        fresh = send(daemon, "fresh")
        sink.wait_for_events(len(first) + len(fresh))
        time.sleep(0.3)
        assert sorted(sink.delivered_ids()) == sorted(first + fresh)
        assert not set(missed) & set(sink.delivered_ids())

        # removed again without forgetting: connected again, it resumes where it was
        reload(daemon, config())
        gap = send(daemon, "gap")
        reload(daemon, config(a=hook))
        after = send(daemon, "after")
        sink.wait_for_events(len(first) + len(fresh) + len(gap) + len(after))
        time.sleep(0.3)
        assert sorted(sink.delivered_ids()) == sorted(first + fresh + gap + after)

        still = daemon.cli("destinations", "forget", "a", "--yes")
        assert still.returncode == 1 and "still in" in still.stderr


def test_a_destination_added_with_start_beginning_gets_the_history(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        daemon = headwater_daemon(config())
        history = send(daemon, "old", 200)
        reload(daemon, config(archive={"url": f"{sink.url}/x", "start": "beginning"}))
        live = send(daemon, "new")
        sink.wait_for_events(len(history) + len(live))
        time.sleep(0.3)
        assert sorted(sink.delivered_ids()) == sorted(history + live)


def test_a_paused_destination_accumulates_lag_and_catches_up_when_resumed(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    with WebhookSink() as sink:
        daemon = headwater_daemon(config(b={"url": f"{sink.url}/b"}))
        first = send(daemon, "first")
        sink.wait_for_events(len(first))
        paused = daemon.cli("destinations", "pause", "b")
        assert paused.returncode == 0 and "paused by the daemon" in paused.stdout, paused.stdout
        held = send(daemon, "held", 30)
        time.sleep(1.0)
        assert sink.events_delivered == len(first)
        listed = json.loads(daemon.cli("destinations", "--format", "json").stdout)
        (row,) = listed["destinations"]
        assert row["state"] == "paused" and row["lag_events"] == len(held)

        daemon.terminate()  # paused stays paused across a restart
        daemon.start()
        time.sleep(1.0)
        assert sink.events_delivered == len(first)
        with daemon.client(headers=daemon.admin_headers()) as admin:
            resumed = admin.post("/admin/destinations/b/resume")
            assert resumed.status_code == 200 and resumed.json()["changed"] is True
        sink.wait_for_events(len(first) + len(held))
        time.sleep(0.3)
        assert sorted(sink.delivered_ids()) == sorted(first + held)
