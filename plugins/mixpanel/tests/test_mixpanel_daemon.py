"""End to end: the Segment Python SDK -> `headwater serve` (EU workspace) -> the router ->
the mixpanel destination -> the Mixpanel contract server, with a 429 and a refused event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mixpanel_contract import TOKEN, MixpanelAPI

from headwater.testing import DaemonProcess, daemon_config, wait_until
from headwater.testing_sdk import SegmentSdk

WRITE_KEY = "mixpanel-e2e-key"
pytestmark = pytest.mark.timeout(120)


def config(url: str) -> str:
    destination = f"""
[destinations.product-analytics]
connector = "mixpanel"
region = "eu"
endpoint = "{url}"
start = "beginning"
project_token = "${{MIXPANEL_TOKEN}}"
"""
    return daemon_config(destination, region="eu", write_key=WRITE_KEY)


def test_sdk_events_reach_mixpanel_eu_through_the_router(
    headwater_daemon: Callable[..., DaemonProcess], mixpanel_api: MixpanelAPI
) -> None:
    server = mixpanel_api
    server.fail_next(429, {"code": 429, "status": "Too Many Requests"}, {"Retry-After": "1"})
    daemon = headwater_daemon(config(server.url), env={"MIXPANEL_TOKEN": TOKEN})
    with SegmentSdk(daemon.url, WRITE_KEY) as sdk:
        sent = sdk.sample_traffic()
        sent[sdk.track(user_id="null", event="Step")] = "refused"  # a placeholder distinct_id
    tracks = {m for m, kind in sent.items() if kind == "track"}

    wait_until(
        lambda: len(server.events) >= len(tracks) and len(server.profiles) >= 3,
        describe=lambda: (len(server.events), server.profiles),
    )
    [letter] = daemon.dead_letters("product-analytics")

    assert sorted(e["properties"]["$insert_id"] for e in server.events) == sorted(tracks)
    assert {e["properties"]["distinct_id"] for e in server.events} == {"user-0", "user-1", "user-2"}
    assert server.profiles["user-1"] == {"$email": "u1@example.com"}
    assert sent[letter["event"]["messageId"]] == "refused"
    assert "distinct_id" in letter["reason"]
    first_import = next(r for r in server.received() if r.path == "/import")
    assert first_import.header("content-encoding") == "gzip"
    output = daemon.stdout() + daemon.stderr()
    assert "product-analytics" in output
    assert TOKEN not in output
