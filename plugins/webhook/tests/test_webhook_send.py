"""What the webhook puts on the wire, and how it reads the answers (real loopback server)."""

from __future__ import annotations

import asyncio
import json
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from headwater_spec import DELIVERED, Rejected, Retry, event_from_dict
from headwater_spec.conformance import MemoryContext, Reply, ServiceServer
from headwater_webhook import WebhookDestination, parse_retry_after, verify

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def server() -> Any:
    with ServiceServer() as srv:
        yield srv


def make(tmp_path: Path, **config: Any) -> WebhookDestination:
    context = MemoryContext(instance_id="hook", region="us", data_dir=tmp_path)
    return WebhookDestination(config, context)


EVENTS = [
    event_from_dict(
        {
            "type": "track",
            "event": "Signed Up",
            "userId": "u1",
            "messageId": "m1",
            "properties": {"plan": "pro"},
            "customField": {"kept": True},
        }
    ),
    event_from_dict({"type": "identify", "anonymousId": "a2", "messageId": "m2"}),
]


def send(dest: WebhookDestination, events: list[Any] = EVENTS) -> list[Any]:
    async def go() -> list[Any]:
        try:
            return await dest.send(events)
        finally:
            await dest.close()

    return asyncio.run(go())


def test_body_is_a_batch_with_sent_at_and_events_as_stored(
    server: ServiceServer, tmp_path: Path
) -> None:
    outcomes = send(make(tmp_path, url=f"{server.url}/in"))
    assert outcomes == [DELIVERED, DELIVERED]
    (request,) = server.received()
    assert request.method == "POST" and request.path == "/in"
    assert request.header("content-type") == "application/json"
    body = json.loads(request.body)
    assert set(body) == {"batch", "sentAt"}
    assert body["sentAt"].endswith("Z")
    assert [e["messageId"] for e in body["batch"]] == ["m1", "m2"]
    assert body["batch"][0]["customField"] == {"kept": True}
    assert body["batch"][0]["properties"] == {"plan": "pro"}
    assert body["batch"][1]["type"] == "identify"


def test_signature_is_hmac_sha256_of_the_exact_body(server: ServiceServer, tmp_path: Path) -> None:
    send(make(tmp_path, url=server.url, secret="topsecret"))
    (request,) = server.received()
    signature = request.header("x-headwater-signature")
    assert signature.startswith("sha256=")
    assert verify("topsecret", request.raw_body, signature)
    assert not verify("other", request.raw_body, signature)
    assert not verify("topsecret", request.raw_body + b" ", signature)


def test_custom_headers_and_signature_header_name(server: ServiceServer, tmp_path: Path) -> None:
    send(
        make(
            tmp_path,
            url=server.url,
            secret="k",
            signature_header="X-Sig",
            headers={"Authorization": "Bearer t0k3n", "X-Tenant": "acme"},
        )
    )
    (request,) = server.received()
    assert request.header("authorization") == "Bearer t0k3n"
    assert request.header("x-tenant") == "acme"
    assert verify("k", request.raw_body, request.header("x-sig"))
    assert request.header("x-headwater-signature") == ""


def test_no_signature_without_a_secret(server: ServiceServer, tmp_path: Path) -> None:
    send(make(tmp_path, url=server.url))
    assert server.received()[0].header("x-headwater-signature") == ""


@pytest.mark.parametrize("status", [408, 425, 429, 500, 503, 504])
def test_retryable_statuses(server: ServiceServer, tmp_path: Path, status: int) -> None:
    server.reply = Reply(status, b"busy")
    outcomes = send(make(tmp_path, url=server.url))
    assert outcomes == [Retry(reason=f"HTTP {status}: busy")] * 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_other_4xx_is_rejected_with_status_and_body(
    server: ServiceServer, tmp_path: Path, status: int
) -> None:
    server.reply = Reply(status, b'{"error":"bad event"}')
    outcomes = send(make(tmp_path, url=server.url))
    assert outcomes == [Rejected(reason=f'HTTP {status}: {{"error":"bad event"}}')] * 2


@pytest.mark.parametrize("status", [401, 503])
def test_an_answer_echoing_a_header_value_or_the_secret_is_masked(
    server: ServiceServer, tmp_path: Path, status: int
) -> None:
    """Receivers echo what they were sent; reasons are stored (dead letters, last_error)
    and shown, so the instance's secrets are masked in them, also across the 200-char cut."""
    token, signing = "Bearer tok-" + "x" * 40, "signing-key-123"
    echo = f"{'.' * 180}bad token {token} (signed with {signing})"
    server.reply = Reply(status, echo.encode())
    dest = make(tmp_path, url=server.url, secret=signing, headers={"Authorization": token})
    outcomes = send(dest)
    assert server.received()[0].header("authorization") == token  # sent as configured
    for outcome in outcomes:
        assert isinstance(outcome, Retry | Rejected)
        assert "tok-" not in outcome.reason and signing not in outcome.reason
        assert "bad token ***" in outcome.reason


def test_redirects_are_not_followed(server: ServiceServer, tmp_path: Path) -> None:
    server.reply = Reply(302, b"", (("Location", "http://127.0.0.1:9/elsewhere"),))
    outcomes = send(make(tmp_path, url=server.url))
    assert all(isinstance(o, Rejected) and o.reason == "HTTP 302" for o in outcomes)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None  # no endless wait: the router's own backoff
    assert parse_retry_after(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30.0
    assert parse_retry_after(formatdate(1_000_000, usegmt=True), now=1_000_100) == 0.0


def test_endpoint_override_wins_over_url(server: ServiceServer, tmp_path: Path) -> None:
    context = MemoryContext(
        instance_id="hook", region="us", data_dir=tmp_path, endpoint=f"{server.url}/proxy"
    )
    dest = WebhookDestination({"url": "http://127.0.0.1:9/never"}, context)
    assert send(dest) == [DELIVERED, DELIVERED]
    assert server.received()[0].path == "/proxy"


def test_repr_hides_secret_and_headers(tmp_path: Path) -> None:
    dest = make(tmp_path, url="http://x.invalid", secret="hush-123", headers={"A": "tok-456"})
    text = repr(dest)
    assert "hush-123" not in text and "tok-456" not in text
    assert "http://x.invalid" in text
    asyncio.run(dest.close())


def test_body_encodes_each_event_as_event_to_dict_would(tmp_path: Path) -> None:
    from headwater_spec import event_to_dict

    dest = make(tmp_path, url="http://127.0.0.1:9/x")
    body = json.loads(dest.body(EVENTS))
    assert body["batch"] == [event_to_dict(ev) for ev in EVENTS]
    asyncio.run(dest.close())
