"""The amplitude destination against a server that enforces Amplitude's HTTP V2 contract."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from amplitude_contract import API_KEY, AmplitudeAPI, Make

from headwater_amplitude import AmplitudeDestination
from headwater_spec import Delivered, Event, Rejected, Retry, event_from_dict
from headwater_spec.conformance import MemoryContext

pytestmark = pytest.mark.timeout(30)

WHEN = "2024-05-01T12:00:00.000Z"
WHEN_MS = 1714564800000


def ev(kind: str = "track", n: int = 0, **fields: Any) -> Event:
    body: dict[str, Any] = {
        "type": kind,
        "messageId": f"msg-{n}",
        "userId": f"user-{n}",
        "timestamp": WHEN,
    }
    if kind == "track":
        body["event"] = "Order Completed"
        body["properties"] = {"total": 10 + n}
    body.update(fields)
    return event_from_dict(body)


@pytest.mark.parametrize(
    ("region", "url"),
    [("us", "https://api2.amplitude.com"), ("eu", "https://api.eu.amplitude.com")],
)
def test_without_override_the_region_picks_the_documented_endpoint(region: str, url: str) -> None:
    dest = AmplitudeDestination({"api_key": API_KEY}, MemoryContext(region=region))
    assert dest.base_url == url


def test_a_region_amplitude_does_not_serve_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"region 'in'.*eu, us.*`endpoint`"):
        AmplitudeDestination({"api_key": API_KEY}, MemoryContext(region="in"))


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_every_event_type_is_sent_in_amplitudes_shape(
    region: str, make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    batch = [
        ev(
            "track",
            1,
            anonymousId="device-1",
            properties={"revenue": 9.5, "productId": "sku-1", "color": "red"},
            context={
                "ip": "203.0.113.9",
                "os": {"name": "iOS", "version": "17.1"},
                "locale": "en-GB",
            },
        ),
        ev("page", 2, name="Pricing"),
        ev("screen", 3),
        ev("identify", 4, traits={"email": "ada@example.com", "plan": "pro"}),
    ]
    outcomes = await make_destination(region).send(batch)

    assert outcomes == [Delivered()] * 4
    assert len(amplitude_api.requests) == 1
    track, page, screen, identify = amplitude_api.events
    assert track["event_type"] == "Order Completed"
    assert track["user_id"] == "user-1" and track["device_id"] == "device-1"
    assert track["time"] == WHEN_MS and track["insert_id"] == "msg-1"
    assert track["event_properties"] == {"revenue": 9.5, "productId": "sku-1", "color": "red"}
    assert track["revenue"] == 9.5 and track["productId"] == "sku-1"
    assert (
        track["ip"] == "203.0.113.9" and track["os_name"] == "iOS" and track["language"] == "en-GB"
    )
    assert page["event_type"] == "Viewed Pricing Page"
    assert page["event_properties"] == {"name": "Pricing"}
    assert screen["event_type"] == "Loaded a Screen"
    assert identify["event_type"] == "$identify"
    assert identify["user_properties"] == {"$set": {"email": "ada@example.com", "plan": "pro"}}
    assert "event_properties" not in identify


async def test_short_ids_need_min_id_length(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    short = ev(userId="u1")
    [refused] = await make_destination().send([short])
    assert (
        isinstance(refused, Rejected)
        and "`user_id` shorter than the minimum id length" in refused.reason
    )
    assert await make_destination(min_id_length=1).send([short]) == [Delivered()]
    assert amplitude_api.requests[-1].json()["options"] == {"min_id_length": 1}


async def test_a_400_rejects_the_named_events_and_resends_the_rest(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    batch = [ev(n=0), ev(n=1, userId="u1"), ev(n=2), ev("track", 3, event="$bad_reserved")]
    outcomes = await make_destination().send(batch)

    assert outcomes[0] == outcomes[2] == Delivered()
    assert isinstance(outcomes[1], Rejected) and "`user_id`" in outcomes[1].reason
    assert isinstance(outcomes[3], Rejected) and "invalid `event_type`" in outcomes[3].reason
    assert [len(r.json()["events"]) for r in amplitude_api.requests] == [4, 2]
    assert [e["insert_id"] for e in amplitude_api.events] == ["msg-0", "msg-2"]


async def test_an_invalid_api_key_is_retried_and_never_echoed(
    make_destination: Make, amplitude_api: AmplitudeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = make_destination(api_key="wrong-key-5566778899")
    [outcome] = await dest.send([ev()])
    assert isinstance(outcome, Retry) and "check api_key" in outcome.reason
    for text in (outcome.reason, caplog.text, repr(dest)):
        assert "wrong-key-5566778899" not in text


async def test_throttled_users_wait_30s_and_the_others_are_resent(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.throttled_users = {"user-2"}
    outcomes = await make_destination().send([ev(n=1), ev(n=2), ev(n=3)])

    assert outcomes[0] == outcomes[2] == Delivered()
    assert isinstance(outcomes[1], Retry) and outcomes[1].retry_after == 30.0
    assert [e["user_id"] for e in amplitude_api.events] == ["user-1", "user-3"]


async def test_429_retry_after_header_wins_over_the_default_pause(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.fail_next(429, {"code": 429, "throttled_events": [0]}, {"Retry-After": "12"})
    outcomes = await make_destination().send([ev(n=1), ev(n=2)])
    assert outcomes == [
        Retry(
            reason="Amplitude throttled this user or device (HTTP 429, over 30 events/s)",
            retry_after=12.0,
        ),
        Delivered(),
    ]


async def test_users_over_the_daily_quota_wait_for_the_next_day(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.throttled_users = amplitude_api.quota_users = {"user-1"}
    [outcome] = await make_destination().send([ev(n=1)])
    assert isinstance(outcome, Retry) and "daily event quota" in outcome.reason
    assert outcome.retry_after is not None and 0 < outcome.retry_after <= 86400


async def test_a_429_naming_no_event_retries_the_whole_request(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.fail_next(429, {"code": 429, "error": "Too many requests"}, {"Retry-After": "3"})
    outcomes = await make_destination().send([ev(n=1), ev(n=2)])
    assert (
        outcomes
        == [Retry(reason="Amplitude throttled the request (HTTP 429)", retry_after=3.0)] * 2
    )


async def test_resending_stops_after_two_rounds(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.fail_next(429, {"code": 429, "throttled_events": [0]}, times=3)
    outcomes = await make_destination().send([ev(n=n) for n in range(4)])
    assert [type(o) for o in outcomes] == [Retry] * 4
    assert isinstance(outcomes[3], Retry) and "while refusing others" in outcomes[3].reason
    assert len(amplitude_api.requests) == 3 and amplitude_api.events == []


async def test_413_splits_the_batch_until_it_fits(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.max_body_bytes = 1600
    batch = [ev(n=n, properties={"blob": "x" * 300}) for n in range(8)]
    outcomes = await make_destination().send(batch)
    assert outcomes == [Delivered()] * 8
    assert sorted(e["insert_id"] for e in amplitude_api.events) == [f"msg-{n}" for n in range(8)]
    assert len(amplitude_api.requests[0].json()["events"]) == 8


async def test_an_event_too_large_alone_is_rejected(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.max_body_bytes = 1600
    outcomes = await make_destination().send([ev(n=1), ev(n=2, properties={"blob": "x" * 5000})])
    assert outcomes[0] == Delivered()
    assert isinstance(outcomes[1], Rejected) and "HTTP 413" in outcomes[1].reason


async def test_5xx_is_retried_and_the_retry_is_deduplicated(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    dest = make_destination()
    amplitude_api.fail_next(503, {"code": 503, "error": "Service unavailable"})
    [first] = await dest.send([ev(n=1)])
    assert isinstance(first, Retry) and "HTTP 503" in first.reason
    assert await dest.send([ev(n=1)]) == [Delivered()]
    assert await dest.send([ev(n=1)]) == [Delivered()]
    assert len(amplitude_api.events) == 2 and len(amplitude_api.unique_events()) == 1


async def test_a_server_that_never_answers_is_retried_after_the_timeout(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.hang_next()
    [outcome] = await make_destination(timeout=0.3).send([ev()])
    assert isinstance(outcome, Retry) and "no answer within 0.3s" in outcome.reason


async def test_connection_failures_are_retried(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    amplitude_api.drop_next()
    [dropped] = await make_destination().send([ev()])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [refused] = await make_destination(endpoint=f"http://127.0.0.1:{port}").send([ev()])
    assert isinstance(dropped, Retry)
    assert isinstance(refused, Retry) and "ConnectError" in refused.reason


async def test_events_it_does_not_send_are_rejected_with_the_fix(make_destination: Make) -> None:
    alias = event_from_dict({"type": "alias", "userId": "user-1", "previousId": "anon-1"})
    outcomes = await make_destination().send([alias, ev()])
    assert isinstance(outcomes[0], Rejected) and "remove it from `events`" in outcomes[0].reason
    assert outcomes[1] == Delivered()


async def test_an_event_without_message_id_gets_a_stable_insert_id(
    make_destination: Make, amplitude_api: AmplitudeAPI
) -> None:
    event = ev(messageId=None)
    dest = make_destination()
    await dest.send([event])
    await dest.send([event])
    first, second = (e["insert_id"] for e in amplitude_api.events)
    assert first == second and len(first) == 32


async def test_the_api_key_stays_out_of_reprs_reasons_and_logs(
    make_destination: Make, amplitude_api: AmplitudeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = make_destination()
    amplitude_api.fail_next(500, {"code": 500, "error": f"internal error for key {API_KEY}"})
    outcomes = [*await dest.send([ev(n=1)]), *await dest.send([ev(n=2)])]
    assert isinstance(outcomes[0], Retry) and "***" in outcomes[0].reason
    assert outcomes[1] == Delivered()
    for text in (repr(dest), caplog.text, *(repr(o) for o in outcomes)):
        assert API_KEY not in text
