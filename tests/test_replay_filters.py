"""A replay's filters, end to end: by time range, by source, by event name (and type), each
to its own webhook destination, all four running at once. Each destination ends with
exactly the events its filter selects: none missing, none extra, none twice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.log import iso_us, now_us
from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import WebhookSink

WEB_KEY = "filters-web-key"
APP_KEY = "filters-app-key"
DESTINATIONS = ("by_time", "by_source", "by_name", "by_type")
pytestmark = pytest.mark.timeout(180)


def config(sinks: dict[str, WebhookSink]) -> str:
    body = f"""
[workspace]
name = "filters"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WEB_KEY}"]

[sources.app]
connector = "tracking-api"
write_keys = ["{APP_KEY}"]
"""
    for name, sink in sinks.items():
        body += f'\n[destinations.{name}]\nconnector = "webhook"\nurl = "{sink.url}/{name}"\n'
    return body


def phase_events(phase: int, count: int) -> list[dict[str, Any]]:
    """A mix of types and names: tracks named "Order Completed" or "Signed Up", pages
    named "Pricing" or "Home", identifies."""
    out: list[dict[str, Any]] = []
    for n in range(count):
        mid = f"p{phase}-{n}"
        user = f"user-{n % 13}"
        kind = n % 5
        if kind in (0, 1):
            name = "Order Completed" if kind == 0 else "Signed Up"
            out.append({"type": "track", "event": name, "userId": user, "messageId": mid})
        elif kind in (2, 3):
            name = "Pricing" if kind == 2 else "Home"
            out.append({"type": "page", "name": name, "userId": user, "messageId": mid})
        else:
            out.append({"type": "identify", "userId": user, "messageId": mid, "traits": {}})
    return out


def test_replays_by_time_range_source_and_event_name_get_exactly_those_events(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    sinks = {name: WebhookSink().start() for name in DESTINATIONS}
    try:
        daemon = headwater_daemon(config({}))
        sent: list[tuple[str, dict[str, Any]]] = []  # (source, event), in order
        marks: list[int] = []
        with (
            daemon.client(auth=(WEB_KEY, "")) as web,
            daemon.client(auth=(APP_KEY, "")) as app,
        ):
            for phase in range(3):
                if phase:
                    time.sleep(0.05)
                    marks.append(now_us())
                    time.sleep(0.05)
                events = phase_events(phase, 1_000)
                for start in range(0, len(events), 100):
                    chunk = events[start : start + 100]
                    source, client = ("app", app) if (start // 100) % 3 == 0 else ("web", web)
                    response = client.post("/v1/batch", json={"batch": chunk})
                    assert response.status_code == 200, response.text
                    sent += [(source, e) for e in chunk]
        t1, t2 = marks

        daemon.config_path.write_text(config(sinks))
        assert daemon.cli("reload").returncode == 0

        runs = {
            "by_time": ["--from", iso_us(t1), "--to", iso_us(t2)],
            "by_source": ["--source", "app"],
            "by_name": ["--event", "Order Completed", "--event", "Pricing"],
            "by_type": ["--event-type", "identify", "--source", "web"],
        }
        jobs = {}
        for name, args in runs.items():
            started = daemon.cli(
                "replay", "start", "-d", name, *args, "--detach", "--format", "json"
            )
            assert started.returncode == 0, started.stdout + started.stderr
            jobs[name] = json.loads(started.stdout)["id"]

        def all_done() -> bool:
            listed = json.loads(daemon.cli("replay", "list", "--format", "json").stdout)
            return all(row["state"] == "done" for row in listed["replays"])

        deadline = time.monotonic() + 60
        while not all_done():
            assert time.monotonic() < deadline, "the replays did not finish"
            time.sleep(0.2)
        time.sleep(0.3)

        def ids(keep: Callable[[str, dict[str, Any]], bool]) -> list[str]:
            return sorted(e["messageId"] for source, e in sent if keep(source, e))

        expected = {
            "by_time": ids(lambda s, e: e["messageId"].startswith("p1-")),
            "by_source": ids(lambda s, e: s == "app"),
            "by_name": ids(
                lambda s, e: (
                    (e["type"] == "track" and e["event"] == "Order Completed")
                    or (e["type"] == "page" and e["name"] == "Pricing")
                )
            ),
            "by_type": ids(lambda s, e: s == "web" and e["type"] == "identify"),
        }
        for name, want in expected.items():
            got = sinks[name].delivered_ids()
            assert len(got) == len(set(got)), f"{name}: duplicates"
            assert sorted(got) == want, f"{name}: not exactly the filtered events"
            assert want, f"{name}: the filter selects something"
        stored = {str(r.event["messageId"]): r.event for r in daemon.records()}
        fields = ("type", "messageId", "timestamp", "originalTimestamp", "receivedAt", "sentAt")
        for name in DESTINATIONS:  # replayed events are the stored ones, times included
            for got_event in sinks[name].delivered():
                original = stored[got_event["messageId"]]
                assert {k: got_event.get(k) for k in fields} == {k: original.get(k) for k in fields}
                assert got_event.get("event") == original.get("event")
                assert got_event.get("name") == original.get("name")
        by_time = json.loads(
            daemon.cli("replay", "status", jobs["by_time"], "--format", "json").stdout
        )
        assert by_time["progress"]["total"] == 1_000  # the range itself is cut by time
        by_name = json.loads(
            daemon.cli("replay", "status", jobs["by_name"], "--format", "json").stdout
        )
        assert by_name["filtered"] == 3_000 - len(expected["by_name"])
    finally:
        for sink in sinks.values():
            sink.stop()
