"""End to end: the Segment Python SDK -> `headwater serve` (EU workspace) -> the router ->
the amplitude destination -> the Amplitude contract server, with a 429 and a refused event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from amplitude_contract import API_KEY, AmplitudeAPI

from headwater.testing import DaemonProcess, daemon_config, wait_until
from headwater.testing_sdk import SegmentSdk

WRITE_KEY = "amplitude-e2e-key"
pytestmark = pytest.mark.timeout(120)


def config(url: str) -> str:
    destination = f"""
[destinations.product-analytics]
connector = "amplitude"
region = "eu"
endpoint = "{url}"
start = "beginning"
api_key = "${{AMPLITUDE_API_KEY}}"
"""
    return daemon_config(destination, region="eu", write_key=WRITE_KEY)


def test_sdk_events_reach_amplitude_eu_through_the_router(
    headwater_daemon: Callable[..., DaemonProcess], amplitude_api: AmplitudeAPI
) -> None:
    server = amplitude_api
    server.fail_next(429, {"code": 429, "error": "Too many requests"}, {"Retry-After": "1"})
    daemon = headwater_daemon(config(server.url), env={"AMPLITUDE_API_KEY": API_KEY})
    with SegmentSdk(daemon.url, WRITE_KEY) as sdk:
        sent = sdk.sample_traffic()
        sent[sdk.track(user_id="u1", event="Step")] = "refused"  # shorter than min_id_length
    accepted = {m for m, kind in sent.items() if kind != "refused"}

    wait_until(lambda: len(server.events) >= len(accepted), describe=lambda: len(server.events))
    [letter] = daemon.dead_letters("product-analytics")

    assert sorted(e["insert_id"] for e in server.events) == sorted(accepted)
    assert {e["user_id"] for e in server.events} == {"user-0", "user-1", "user-2"}
    identifies = [e for e in server.events if e["event_type"] == "$identify"]
    assert {e["user_properties"]["$set"]["email"] for e in identifies} == {
        f"u{n}@example.com" for n in range(3)
    }
    assert sent[letter["event"]["messageId"]] == "refused"
    assert "`user_id` shorter than the minimum id length" in letter["reason"]
    output = daemon.stdout() + daemon.stderr()
    assert "product-analytics" in output
    assert API_KEY not in output
