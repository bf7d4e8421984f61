"""End to end: the published Segment Python SDK -> `headwater serve` -> the webhook
destination -> a webhook receiver on loopback. Healthy and faulty receivers."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import WebhookSink
from headwater_spec import HttpRequest

WRITE_KEY = "delivery-test-key"
pytestmark = pytest.mark.timeout(120)


def config(url: str, **dest: Any) -> str:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in dest.items())
    return f"""
[workspace]
name = "delivery"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]

[destinations.hook]
connector = "webhook"
url = "{url}/hook"
start = "beginning"
{extra}"""


def send_with_sdk(daemon: DaemonProcess, count: int, users: int = 5, **props: Any) -> list[str]:
    """Send ``count`` events through the real SDK; return their messageIds in send order."""
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)
    failed: list[Any] = []
    client = Client(
        WRITE_KEY,
        host=daemon.url,
        upload_size=50,
        max_retries=2,
        on_error=lambda error, batch: failed.append(error),
    )
    ids = []
    for n in range(count):
        user = f"user-{n % users}"
        if n % 3 == 0:
            ok, msg = client.identify(user_id=user, traits={"n": n})
        else:
            ok, msg = client.track(user_id=user, event="Step", properties={"n": n, **props})
        assert ok
        ids.append(msg["messageId"])
    client.flush()
    client.shutdown()
    assert not failed, failed[:3]
    return ids


def user_order(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """messageIds per user, first delivery of each only, in arrival order."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for event in events:
        mid = event["messageId"]
        if mid not in seen:
            seen.add(mid)
            out.setdefault(event["userId"], []).append(mid)
    return out


def expected_order(ids: list[str], count: int, users: int = 5) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n, mid in enumerate(ids[:count]):
        out.setdefault(f"user-{n % users}", []).append(mid)
    return out


@pytest.fixture
def sink() -> Any:
    with WebhookSink() as s:
        yield s


def test_healthy_receiver_gets_every_message_id_exactly_once(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    daemon = headwater_daemon(config(sink.url))
    ids = send_with_sdk(daemon, 300)
    sink.wait_for_events(300)
    time.sleep(0.5)  # anything extra would arrive now
    assert sorted(sink.delivered_ids()) == sorted(ids)
    assert user_order(sink.delivered()) == expected_order(ids, 300)
    request = sink.requests[0]
    assert request.headers["content-type"] == "application/json"
    assert "sentAt" in json.loads(request.body)


def test_500_for_a_while_then_200_delivers_all_in_user_order(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    first_request: list[float] = []  # the fault lasts 2 s from the first request, however
    # long the daemon took to start and the SDK to send on a busy machine

    def flaky(request: HttpRequest, events: list[dict[str, Any]]) -> Any:
        if not first_request:
            first_request.append(time.time())
        return (500, b"overloaded", []) if time.time() < first_request[0] + 2.0 else None

    sink.behaviour = flaky
    daemon = headwater_daemon(config(sink.url))
    ids = send_with_sdk(daemon, 200)
    sink.wait_for_events(200, timeout=60)
    assert any(r.status == 500 for r in sink.requests), "the fault was exercised"
    assert set(sink.delivered_ids()) == set(ids)
    assert user_order(sink.delivered()) == expected_order(ids, 200)


def test_429_retry_after_is_honoured(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    """One lane, so no request was already in flight when the 429 came back."""
    limited_at: list[float] = []

    def limited(request: HttpRequest, events: list[dict[str, Any]]) -> Any:
        if not limited_at:
            limited_at.append(time.time())
            return (429, b"slow down", [("Retry-After", "2")])
        return None

    sink.behaviour = limited
    daemon = headwater_daemon(config(sink.url, concurrency=1))
    ids = send_with_sdk(daemon, 60)
    sink.wait_for_events(60, timeout=60)
    later = [r.at for r in sink.requests[1:]]
    assert later and min(later) - limited_at[0] >= 1.95
    assert sorted(sink.delivered_ids()) == sorted(ids)


def test_400_dead_letters_the_bad_events_and_delivers_the_rest_then_redrive(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    fixed = False

    def picky(request: HttpRequest, events: list[dict[str, Any]]) -> Any:
        bad = [e for e in events if e.get("properties", {}).get("n", 0) % 25 == 1]
        if bad and not fixed:
            return (400, b'{"error":"n must not be 1 mod 25"}', [])
        return None

    sink.behaviour = picky
    daemon = headwater_daemon(config(sink.url))
    ids = send_with_sdk(daemon, 100)
    bad_ids = {ids[n] for n in range(100) if n % 3 and n % 25 == 1}
    good_ids = set(ids) - bad_ids
    sink.wait_for_events(len(good_ids), timeout=60)

    deadline = time.monotonic() + 30
    while True:
        listed = daemon.cli("dlq", "list", "hook", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        letters = json.loads(listed.stdout)["dead_letters"]
        if len(letters) == len(bad_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {d["event"]["messageId"] for d in letters} == bad_ids
    assert {d["reason"] for d in letters} == {'HTTP 400: {"error":"n must not be 1 mod 25"}'}
    assert all(d["attempts"] == 1 and d["destination"] == "hook" for d in letters)
    assert set(sink.delivered_ids()) == good_ids

    fixed = True
    redrive = daemon.cli("dlq", "redrive", "hook")
    assert redrive.returncode == 0, redrive.stderr
    sink.wait_for_events(100, timeout=30)
    assert sorted(sink.delivered_ids()) == sorted(ids)

    # the sink counts a batch before it answers; the daemon books it after the answer
    def hook_status() -> dict[str, Any]:
        with daemon.client() as client:
            response = client.get("/admin/destinations/hook", headers=daemon.admin_headers())
        status: dict[str, Any] = response.json()
        return status

    deadline = time.monotonic() + 30
    while (status := hook_status())["dead_letters"] or status["delivered"] < 100:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    listed = daemon.cli("dlq", "list", "hook", "--format", "json")
    assert json.loads(listed.stdout)["dead_letters"] == []
    assert status["dead_lettered"] == len(bad_ids) and status["redriven"] == len(bad_ids)
    assert status["delivered"] == 100 and status["dead_letters"] == 0


def test_receiver_down_through_a_daemon_restart(
    headwater_daemon: Callable[..., DaemonProcess],
) -> None:
    # bound but not listening: connections are refused, and no other process can take
    # the port before the receiver comes up on it
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = int(closed.getsockname()[1])
    daemon = headwater_daemon(config(f"http://127.0.0.1:{port}"))
    ids = send_with_sdk(daemon, 120)
    time.sleep(1.0)  # some attempts fail against the closed port
    daemon.kill9()
    closed.close()
    with WebhookSink(port) as sink:
        daemon.start()
        sink.wait_for_events(120, timeout=60)
        time.sleep(0.3)
        assert set(sink.delivered_ids()) == set(ids)
        assert user_order(sink.delivered()) == expected_order(ids, 120)
        with daemon.client() as client:
            listing = client.get("/admin/destinations", headers=daemon.admin_headers())
        (hook,) = listing.json()["destinations"]
        assert hook["id"] == "hook" and hook["state"] in ("running", "backing_off")


def test_admin_api_needs_the_token(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    daemon = headwater_daemon(config(sink.url))
    with daemon.client() as client:
        assert client.get("/admin/destinations").status_code == 401
        missing = client.get("/admin/destinations/nope", headers=daemon.admin_headers())
    assert missing.status_code == 404
    assert "hook" in missing.json()["message"]
    assert httpx.get(f"{daemon.url}/metrics").text.count("headwater_destination_") > 0


def test_dead_letters_over_the_admin_api(
    headwater_daemon: Callable[..., DaemonProcess], sink: WebhookSink
) -> None:
    refusing = True
    sink.behaviour = lambda request, events: (422, b"nope", []) if refusing else None
    daemon = headwater_daemon(config(sink.url))
    ids = send_with_sdk(daemon, 20)
    headers = daemon.admin_headers()
    with daemon.client() as client:
        deadline = time.monotonic() + 30
        while True:
            listed = client.get("/admin/destinations/hook/dead-letters?limit=5", headers=headers)
            letters = listed.json()["dead_letters"]
            if len(letters) == 5 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(letters) == 5 and letters[0]["reason"] == "HTTP 422: nope"
        bad_limit = client.get("/admin/destinations/hook/dead-letters?limit=x", headers=headers)
        assert bad_limit.status_code == 400
        while client.get("/admin/destinations/hook", headers=headers).json()["dead_letters"] < 20:
            time.sleep(0.2)

        refusing = False
        redriven = client.post("/admin/destinations/hook/dead-letters/redrive", headers=headers)
        assert redriven.json() == {"destination": "hook", "redriven": 20}
        sink.wait_for_events(20, timeout=30)
        assert sorted(sink.delivered_ids()) == sorted(ids)

        refusing = True
        ids2 = send_with_sdk(daemon, 5)
        while client.get("/admin/destinations/hook", headers=headers).json()["dead_letters"] < 5:
            time.sleep(0.2)
        purged = client.delete("/admin/destinations/hook/dead-letters", headers=headers)
        assert purged.json() == {"destination": "hook", "purged": 5}
        time.sleep(0.3)
        status = client.get("/admin/destinations/hook", headers=headers).json()
    assert status["dead_letters"] == 0 and len(ids2) == 5
