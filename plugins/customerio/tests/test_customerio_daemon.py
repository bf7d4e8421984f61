"""End to end: the Segment Python SDK -> `headwater serve` (EU workspace) -> the router ->
the customerio destination -> the Customer.io contract server, with a 429 and a refused item."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from customerio_contract import API_KEY, SITE_ID, CustomerIOAPI

from headwater.testing import DaemonProcess, daemon_config, wait_until
from headwater.testing_sdk import SegmentSdk

WRITE_KEY = "customerio-e2e-key"
pytestmark = pytest.mark.timeout(120)


def config(url: str) -> str:
    destination = f"""
[destinations.product-analytics]
connector = "customerio"
region = "eu"
endpoint = "{url}"
start = "beginning"
site_id = "{SITE_ID}"
api_key = "${{CUSTOMERIO_API_KEY}}"
"""
    return daemon_config(destination, region="eu", write_key=WRITE_KEY)


@pytest.fixture
def eu_workspace() -> Iterator[CustomerIOAPI]:
    with CustomerIOAPI(region="eu") as api:
        yield api
    api.assert_no_violations()


def test_sdk_events_reach_customerio_eu_through_the_router(
    headwater_daemon: Callable[..., DaemonProcess], eu_workspace: CustomerIOAPI
) -> None:
    server = eu_workspace
    server.fail_next(429, {"meta": {"error": "rate limited"}}, {"Retry-After": "1"})
    daemon = headwater_daemon(config(server.url), env={"CUSTOMERIO_API_KEY": API_KEY})
    with SegmentSdk(daemon.url, WRITE_KEY) as sdk:
        sent = sdk.sample_traffic()
        refused = sdk.alias(previous_id="someone-else", user_id="never-identified")
        sent[refused] = "refused"  # a merge into a person Customer.io does not know
    tracks = [m for m, kind in sent.items() if kind == "track"]

    def identified() -> bool:
        return all(server.people.get(f"user-{n}", {}).get("email") for n in range(3))

    wait_until(
        lambda: len(server.activities) >= len(tracks) and identified(),
        describe=lambda: (len(server.activities), server.people),
    )
    [letter] = daemon.dead_letters("product-analytics")

    assert len(server.activities) == len(tracks) and server.duplicates == 0
    assert {a["person"] for a in server.activities} == {"user-0", "user-1", "user-2"}
    assert server.people["user-1"]["email"] == "u1@example.com"
    assert sent[letter["event"]["messageId"]] == "refused"
    assert "the primary person must already exist" in letter["reason"]
    output = daemon.stdout() + daemon.stderr()
    assert "product-analytics" in output
    assert API_KEY not in output
