"""The published Python SDKs (Segment's and Customer.io's), unmodified, against a real
daemon: every event they report as sent is in the log exactly once, fields intact."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from headwater.testing import DaemonProcess

SEGMENT_KEY = "segment-python-key"
CIO_KEY = "pk_us_headwater-test-key"  # the pk_/sk_ form makes the Customer.io SDK use Bearer
CONFIG = f"""
[sources.app]
connector = "tracking-api"
write_keys = ["{SEGMENT_KEY}", "{CIO_KEY}"]
"""
COUNT = 60


def send_all(client: Any) -> list[dict[str, Any]]:
    """Six event types in turn; return the messages the SDK queued (with their ids)."""
    queued = []
    for n in range(COUNT):
        user = f"py-user-{n % 5}"
        props = {"n": n, "nested": {"list": [1, "two", 3.5], "flag": n % 2 == 0}}
        kind = n % 6
        if kind == 0:
            ok, msg = client.track(user_id=user, event="Order Completed", properties=props)
        elif kind == 1:
            ok, msg = client.identify(user_id=user, traits={"n": n, "plan": "pro"})
        elif kind == 2:
            ok, msg = client.page(user_id=user, name="Home", properties=props)
        elif kind == 3:
            ok, msg = client.screen(user_id=user, name="Settings", properties=props)
        elif kind == 4:
            ok, msg = client.group(user_id=user, group_id=f"org-{n}", traits={"n": n})
        else:
            ok, msg = client.alias(previous_id=f"anon-{n}", user_id=user)
        assert ok
        queued.append(msg)
    return queued


def check_stored(daemon: DaemonProcess, sent: list[dict[str, Any]]) -> None:
    stored = daemon.events_by_message_id()
    for message in sent:
        copies = stored.get(message["messageId"], [])
        assert len(copies) == 1, f"{message['messageId']} stored {len(copies)} times"
        event = copies[0]
        assert event["type"] == message["type"]
        assert event["userId"] == message["userId"]
        for field in ("properties", "traits", "event", "name", "groupId", "previousId"):
            if message.get(field) not in (None, {}):
                assert event[field] == message[field], field
        assert event["context"]["library"]["name"] == message["context"]["library"]["name"]
        assert event["receivedAt"] and event["timestamp"]
    assert "writeKey" not in repr([e for copies in stored.values() for e in copies])


def run_sdk(make: Callable[..., Any], daemon: DaemonProcess, key: str, gzip: bool) -> None:
    failed: list[Any] = []

    def on_error(error: Exception, batch: list[dict[str, Any]]) -> None:
        failed.extend(m["messageId"] for m in batch)

    client = make(key, host=daemon.url, gzip=gzip, on_error=on_error, upload_size=25, max_retries=2)
    queued = send_all(client)
    client.flush()
    client.shutdown()
    assert not failed, f"the SDK reported failures: {failed[:5]}"
    check_stored(daemon, queued)
    assert len(daemon.records()) == COUNT


@pytest.mark.timeout(120)
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_analytics_python(headwater_daemon: Any, gzip: bool) -> None:
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)
    daemon = headwater_daemon(CONFIG)
    run_sdk(Client, daemon, SEGMENT_KEY, gzip)


@pytest.mark.timeout(120)
def test_customerio_cdp_analytics_python_with_bearer_key(headwater_daemon: Any) -> None:
    from customerio.analytics import Client

    logging.getLogger("customerio").setLevel(logging.CRITICAL)
    daemon = headwater_daemon(CONFIG)
    run_sdk(Client, daemon, CIO_KEY, True)
