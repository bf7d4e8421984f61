"""The mixpanel destination against a server that enforces Mixpanel's documented contract."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from mixpanel_contract import TOKEN, Make, MixpanelAPI

from headwater_mixpanel import MixpanelDestination, insert_id
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
    [
        ("us", "https://api.mixpanel.com"),
        ("eu", "https://api-eu.mixpanel.com"),
        ("in", "https://api-in.mixpanel.com"),
    ],
)
def test_without_override_the_region_picks_the_documented_endpoint(region: str, url: str) -> None:
    dest = MixpanelDestination({"project_token": TOKEN}, MemoryContext(region=region))
    assert dest.base_url == url


def test_a_region_mixpanel_does_not_serve_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"region 'au'.*eu, in, us.*`endpoint`"):
        MixpanelDestination({"project_token": TOKEN}, MemoryContext(region="au"))


def test_the_endpoint_override_wins_over_the_region() -> None:
    dest = MixpanelDestination(
        {"project_token": TOKEN}, MemoryContext(region="eu", endpoint="https://proxy.example/mp/")
    )
    assert dest.base_url == "https://proxy.example/mp"


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_every_event_type_reaches_import_and_engage_as_documented(
    region: str, make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    dest = make_destination(region)
    batch = [
        ev("track", 1, context={"ip": "203.0.113.9", "page": {"url": "https://shop.example/"}}),
        ev("page", 2, name="Pricing", properties={"path": "/pricing"}),
        ev("screen", 3, name="Home"),
        ev(
            "identify",
            4,
            anonymousId="anon-4",
            traits={"email": "ada@example.com", "plan": "pro", "firstName": "Ada"},
        ),
        ev("page", 5, anonymousId="anon-5", userId=None),
    ]
    outcomes = await dest.send(batch)

    assert outcomes == [Delivered()] * 5
    imports = [r for r in mixpanel_api.requests if r.path == "/import"]
    assert len(imports) == 1
    assert imports[0].headers["content-encoding"] == "gzip"
    names = [e["event"] for e in mixpanel_api.events]
    assert names == [
        "Order Completed",
        "Viewed Pricing Page",
        "Viewed Home Screen",
        "$identify",
        "Loaded a Page",
    ]
    track = mixpanel_api.events[0]["properties"]
    assert track["time"] == WHEN_MS
    assert track["$insert_id"] == "msg-1"
    assert track["distinct_id"] == track["$user_id"] == "user-1"
    assert track["total"] == 11
    assert track["ip"] == "203.0.113.9"
    assert track["$current_url"] == "https://shop.example/"
    identify = mixpanel_api.events[3]["properties"]
    assert identify["$identified_id"] == "user-4"
    assert identify["$anon_id"] == identify["$device_id"] == "anon-4"
    anonymous_page = mixpanel_api.events[4]["properties"]
    assert anonymous_page["distinct_id"] == anonymous_page["$device_id"] == "anon-5"
    assert "$user_id" not in anonymous_page
    assert mixpanel_api.profiles == {
        "user-4": {"$email": "ada@example.com", "plan": "pro", "$first_name": "Ada"}
    }


async def test_service_account_auth_sends_project_id(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    dest = make_destination(
        service_account_username="sa.user",
        service_account_secret="sa-s3cret",
        project_id=2195193,
        gzip=False,
    )
    assert await dest.send([ev()]) == [Delivered()]
    request = mixpanel_api.requests[-1]
    assert request.params()["project_id"] == "2195193"
    assert "content-encoding" not in request.headers


async def test_message_ids_mixpanel_refuses_become_a_stable_hash(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    long_id = "ajs-next-" + "x" * 40 + "_with_underscores"
    event = ev(messageId=long_id)
    dest = make_destination()
    assert await dest.send([event]) == [Delivered()]
    assert await dest.send([event]) == [Delivered()]
    sent = [e["properties"]["$insert_id"] for e in mixpanel_api.events]
    assert sent[0] == sent[1] == insert_id(event)
    assert len(sent[0]) == 32


async def test_partial_failure_rejects_only_the_failed_records(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    batch = [ev(n=0), ev(n=1, timestamp="1960-01-01T00:00:00Z"), ev(n=2), ev(n=3, userId="null")]
    outcomes = await make_destination().send(batch)

    assert outcomes[0] == outcomes[2] == Delivered()
    assert isinstance(outcomes[1], Rejected)
    assert "properties.time" in outcomes[1].reason and "1971" in outcomes[1].reason
    assert isinstance(outcomes[3], Rejected)
    assert "distinct_id" in outcomes[3].reason
    assert [e["properties"]["$insert_id"] for e in mixpanel_api.events] == ["msg-0", "msg-2"]


async def test_an_invalid_profile_update_is_isolated_and_the_rest_delivered(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    too_many = {f"t{i}": i for i in range(300)}
    batch = [
        ev("identify", 1, traits={"a": 1}),
        ev("identify", 2, traits=too_many),
        ev("identify", 3, traits={"b": 2}),
    ]
    outcomes = await make_destination().send(batch)

    assert outcomes[0] == outcomes[2] == Delivered()
    assert isinstance(outcomes[1], Rejected)
    assert "fewer than 255 properties" in outcomes[1].reason
    assert set(mixpanel_api.profiles) == {"user-1", "user-3"}


async def test_429_is_retried_after_the_seconds_asked_for(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    body = {"code": 429, "error": "Project exceeded rate limits.", "status": "Too Many Requests"}
    mixpanel_api.fail_next(429, body, {"Retry-After": "7"})
    outcomes = await make_destination().send([ev(n=1), ev(n=2)])
    assert outcomes == [Retry(reason="Mixpanel /import rate limit (HTTP 429)", retry_after=7.0)] * 2
    assert mixpanel_api.events == []


async def test_429_retry_after_as_an_http_date(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    mixpanel_api.fail_next(429, {"code": 429}, {"Retry-After": later})
    [outcome] = await make_destination().send([ev()])
    assert isinstance(outcome, Retry) and outcome.retry_after is not None
    assert 50 <= outcome.retry_after <= 61


async def test_429_without_retry_after_leaves_the_wait_to_the_router(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    mixpanel_api.fail_next(429, {"code": 429})
    [outcome] = await make_destination().send([ev()])
    assert isinstance(outcome, Retry) and outcome.retry_after is None


async def test_5xx_is_retried_and_the_retry_is_deduplicable(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    dest = make_destination()
    mixpanel_api.fail_next(503, {"error": "unavailable"})
    first = await dest.send([ev(n=1)])
    assert isinstance(first[0], Retry) and "HTTP 503" in first[0].reason
    assert await dest.send([ev(n=1)]) == [Delivered()]
    bodies = [r.json() for r in mixpanel_api.requests if r.path == "/import"]
    assert bodies[0] == bodies[1], "a retry must send the same time and $insert_id"


async def test_a_server_that_never_answers_is_retried_after_the_timeout(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    mixpanel_api.hang_next()
    [outcome] = await make_destination(timeout=0.3).send([ev()])
    assert isinstance(outcome, Retry)
    assert "no answer within 0.3s" in outcome.reason


async def test_a_dropped_connection_is_retried(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    mixpanel_api.drop_next()
    [outcome] = await make_destination().send([ev()])
    assert isinstance(outcome, Retry)


async def test_an_unreachable_endpoint_is_retried(make_destination: Make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [outcome] = await make_destination(endpoint=f"http://127.0.0.1:{port}").send([ev()])
    assert isinstance(outcome, Retry)
    assert "ConnectError" in outcome.reason


async def test_413_splits_the_batch_until_it_fits(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    batch = [ev(n=n, properties={"blob": "x" * 300}) for n in range(8)]
    mixpanel_api.max_import_bytes = 1500
    outcomes = await make_destination(gzip=False).send(batch)

    assert outcomes == [Delivered()] * 8
    statuses = [len(r.json()) for r in mixpanel_api.requests]
    assert statuses[0] == 8 and max(statuses[1:]) < 8
    assert sorted(e["properties"]["$insert_id"] for e in mixpanel_api.events) == [
        f"msg-{n}" for n in range(8)
    ]


async def test_an_event_too_large_alone_is_rejected(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    mixpanel_api.max_import_bytes = 1500
    batch = [ev(n=1), ev(n=2, properties={"blob": "x" * 5000})]
    outcomes = await make_destination().send(batch)
    assert outcomes[0] == Delivered()
    assert isinstance(outcomes[1], Rejected) and "HTTP 413" in outcomes[1].reason


async def test_refused_credentials_are_retried_not_dead_lettered(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    dest = make_destination(project_token="wrong-token-123")
    [outcome] = await dest.send([ev()])
    assert isinstance(outcome, Retry)
    assert "refused the credentials (HTTP 401" in outcome.reason


async def test_events_it_does_not_send_are_rejected_with_the_fix(make_destination: Make) -> None:
    group = event_from_dict({"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m"})
    no_time = ev(timestamp=None)
    outcomes = await make_destination().send([group, no_time, ev()])
    assert isinstance(outcomes[0], Rejected) and "remove it from `events`" in outcomes[0].reason
    assert isinstance(outcomes[1], Rejected) and "no usable time" in outcomes[1].reason
    assert outcomes[2] == Delivered()


async def test_an_identify_with_nothing_to_say_is_delivered_without_a_request(
    make_destination: Make, mixpanel_api: MixpanelAPI
) -> None:
    assert await make_destination().send([ev("identify", 1)]) == [Delivered()]
    assert mixpanel_api.requests == []


async def test_secrets_stay_out_of_reprs_reasons_and_logs(
    make_destination: Make, mixpanel_api: MixpanelAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mixpanel_api.echo_secrets_in_errors = True
    dest = make_destination(
        service_account_username="sa.user", service_account_secret="sa-s3cret", project_id="2195193"
    )
    outcomes = list(await dest.send([ev(n=1)]))
    mixpanel_api.service_account = None
    outcomes += await dest.send([ev(n=2)])
    mixpanel_api.fail_next(500, {"error": f"boom for {TOKEN} / sa-s3cret"})
    outcomes += await dest.send([ev(n=3)])

    assert outcomes[0] == Delivered()
    assert isinstance(outcomes[1], Retry) and isinstance(outcomes[2], Retry)
    texts = [repr(dest), caplog.text, *(repr(o) for o in outcomes)]
    for text in texts:
        assert TOKEN not in text
        assert "sa-s3cret" not in text
    assert "***" in outcomes[2].reason


async def test_close_can_be_called_twice(make_destination: Make) -> None:
    dest = make_destination()
    await dest.send([ev()])
    await dest.close()
    await dest.close()
