"""The customerio destination against a server that enforces the Track API's contract."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from customerio_contract import API_KEY, SITE_ID, ULID, CustomerIOAPI, Make

from headwater_customerio import CustomerIODestination, ulid
from headwater_spec import Delivered, Event, Rejected, Retry, event_from_dict
from headwater_spec.conformance import MemoryContext

pytestmark = pytest.mark.timeout(30)

WHEN = "2024-05-01T12:00:00.000Z"
WHEN_S = 1714564800


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
    ("region", "url"), [("us", "https://track.customer.io"), ("eu", "https://track-eu.customer.io")]
)
def test_without_override_the_region_picks_the_documented_endpoint(region: str, url: str) -> None:
    dest = CustomerIODestination(
        {"site_id": SITE_ID, "api_key": API_KEY}, MemoryContext(region=region)
    )
    assert dest.base_url == url


def test_a_region_customerio_does_not_serve_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"region 'au'.*eu, us.*`endpoint`"):
        CustomerIODestination({"site_id": SITE_ID, "api_key": API_KEY}, MemoryContext(region="au"))


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_people_and_their_activity_reach_the_workspace(
    region: str, make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    batch = [
        ev(
            "identify",
            1,
            anonymousId="anon-1",
            traits={"email": "ada@example.com", "createdAt": "2024-01-01T00:00:00Z"},
        ),
        ev("track", 2, userId="user-1"),
        ev("page", 3, userId="user-1", properties={"url": "https://shop.example/pricing"}),
        ev("screen", 4, userId="user-1", name="Home"),
        ev("identify", 5, userId="user-5", traits={"plan": "free"}),
        event_from_dict({"type": "alias", "userId": "user-1", "previousId": "user-5"}),
        ev("track", 9, userId=None, anonymousId="anon-9"),
        ev("page", 10, userId=None, anonymousId="anon-9", name="Landing"),
    ]
    outcomes = await make_destination(region).send(batch)

    assert outcomes == [Delivered()] * 8
    paths = sorted(customerio_api.paths())
    assert paths == ["/api/v1/events", "/api/v1/events", "/api/v2/batch"]
    assert customerio_api.people == {
        "user-1": {
            "plan": "free",
            "email": "ada@example.com",
            "created_at": 1704067200,
            "anonymous_id": "anon-1",
        }
    }
    track, page, screen = customerio_api.activities
    assert (track["type"], track["name"], track["data"]) == (
        "event",
        "Order Completed",
        {"total": 12},
    )
    assert track["timestamp"] == WHEN_S and ULID.fullmatch(track["id"])
    assert (page["type"], page["name"]) == ("page", "https://shop.example/pricing")
    assert (screen["type"], screen["name"]) == ("screen", "Home")
    anonymous = [(a["anonymous_id"], a["type"], a["name"]) for a in customerio_api.anonymous]
    assert anonymous == [("anon-9", "event", "Order Completed"), ("anon-9", "page", "Landing")]


async def test_a_retried_event_keeps_its_ulid_and_is_deduplicated(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    dest = make_destination()
    event = ev()
    assert await dest.send([event]) == [Delivered()]
    assert await dest.send([event]) == [Delivered()]
    assert len(customerio_api.activities) == 1 and customerio_api.duplicates == 1
    assert customerio_api.activities[0]["id"] == ulid(event)
    assert ulid(event) != ulid(ev(n=1))


async def test_a_207_rejects_only_the_refused_items(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    never_identified = event_from_dict({"type": "alias", "userId": "ghost-1", "previousId": "x-1"})
    batch = [ev("track", 1), never_identified, ev("track", 2)]
    outcomes = await make_destination().send(batch)

    assert outcomes[0] == outcomes[2] == Delivered()
    assert isinstance(outcomes[1], Rejected)
    assert "`primary`: the primary person must already exist" in outcomes[1].reason
    assert [a["person"] for a in customerio_api.activities] == ["user-1", "user-2"]


async def test_an_item_over_32kb_is_rejected_before_sending(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    outcomes = await make_destination().send([ev(n=1, properties={"blob": "x" * 40_000}), ev(n=2)])
    assert isinstance(outcomes[0], Rejected) and "32 KB" in outcomes[0].reason
    assert outcomes[1] == Delivered()
    assert len(customerio_api.requests[0].json()["batch"]) == 1


async def test_batches_over_500kb_go_in_several_requests(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    batch = [ev(n=n, properties={"blob": "x" * 30_000}) for n in range(20)]
    outcomes = await make_destination().send(batch)
    assert outcomes == [Delivered()] * 20
    assert len(customerio_api.requests) == 2
    assert all(len(r.body) < 500 * 1000 for r in customerio_api.requests)
    assert len(customerio_api.activities) == 20


async def test_a_413_splits_the_batch(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    customerio_api.max_batch_bytes = 1500
    outcomes = await make_destination().send(
        [ev(n=n, properties={"b": "x" * 300}) for n in range(6)]
    )
    assert outcomes == [Delivered()] * 6
    assert len(customerio_api.activities) == 6
    assert len(customerio_api.requests) > 1


async def test_events_it_cannot_send_are_rejected_with_the_reason(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    group = event_from_dict({"type": "group", "userId": "u-1", "groupId": "g-1"})
    anonymous_identify = ev("identify", 1, userId=None, anonymousId="anon-1", traits={"a": 1})
    page_without_url = ev("page", 2)
    outcomes = await make_destination().send([group, anonymous_identify, page_without_url])
    assert all(isinstance(o, Rejected) for o in outcomes)
    reasons = [o.reason for o in outcomes if isinstance(o, Rejected)]
    assert "remove it from `events`" in reasons[0]
    assert "without userId" in reasons[1]
    assert "needs a URL" in reasons[2]
    assert customerio_api.requests == []


async def test_an_invalid_anonymous_event_is_rejected_with_customerios_errors(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    customerio_api.fail_next(400, {"meta": {"errors": ["name is too long"]}}, path="/api/v1/events")
    outcomes = await make_destination().send([ev(userId=None, anonymousId="anon-1"), ev(n=2)])
    assert isinstance(outcomes[0], Rejected) and "name is too long" in outcomes[0].reason
    assert outcomes[1] == Delivered()


async def test_anonymous_events_of_one_person_arrive_in_order(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    batch = [ev(n=n, userId=None, anonymousId=f"anon-{n % 2}") for n in range(6)]
    assert await make_destination().send(batch) == [Delivered()] * 6
    for person in ("anon-0", "anon-1"):
        ids = [a["id"] for a in customerio_api.anonymous if a["anonymous_id"] == person]
        assert ids == [ulid(e) for e in batch if e.anonymousId == person]


async def test_refused_credentials_are_retried_with_the_fix(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    outcomes = await make_destination(api_key="wrong-key").send(
        [ev(), ev(userId=None, anonymousId="a1")]
    )
    assert all(isinstance(o, Retry) for o in outcomes)
    assert all("check site_id and api_key" in o.reason for o in outcomes if isinstance(o, Retry))


@pytest.mark.parametrize("path", ["/api/v2/batch", "/api/v1/events"])
async def test_429_is_retried_after_the_seconds_asked_for(
    path: str, make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    customerio_api.fail_next(
        429, {"meta": {"error": "rate limited"}}, {"Retry-After": "4"}, path=path
    )
    event = ev() if path == "/api/v2/batch" else ev(userId=None, anonymousId="anon-1")
    [outcome] = await make_destination().send([event])
    assert isinstance(outcome, Retry) and outcome.retry_after == 4.0


async def test_5xx_is_retried_then_delivered_once(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    dest = make_destination()
    customerio_api.fail_next(502, b"Bad Gateway")
    [first] = await dest.send([ev()])
    assert isinstance(first, Retry) and "HTTP 502" in first.reason
    assert await dest.send([ev()]) == [Delivered()]
    assert len(customerio_api.activities) == 1


async def test_timeouts_and_connection_failures_are_retried(
    make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    customerio_api.hang_next()
    [timed_out] = await make_destination(timeout=0.3).send([ev()])
    customerio_api.drop_next()
    [dropped] = await make_destination().send([ev(n=2)])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [refused] = await make_destination(endpoint=f"http://127.0.0.1:{port}").send([ev(n=3)])
    assert isinstance(timed_out, Retry) and "no answer within 0.3s" in timed_out.reason
    assert isinstance(dropped, Retry)
    assert isinstance(refused, Retry) and "ConnectError" in refused.reason


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_check_confirms_the_credentials_and_the_region(
    region: str, make_destination: Make, customerio_api: CustomerIOAPI
) -> None:
    customerio_api.region = region
    assert (await make_destination(region).check()).ok
    other = "eu" if region == "us" else "us"
    wrong = await make_destination(other).check()
    assert not wrong.ok and f'set `region = "{region}"`' in wrong.message
    refused = await make_destination(region, api_key="nope").check()
    assert not refused.ok and "refused" in refused.message


async def test_the_api_key_stays_out_of_reprs_reasons_and_logs(
    make_destination: Make, customerio_api: CustomerIOAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = make_destination()
    customerio_api.fail_next(500, {"meta": {"error": f"failed for {SITE_ID}:{API_KEY}"}})
    outcomes = [*await dest.send([ev(n=1)]), *await dest.send([ev(n=2)])]
    assert isinstance(outcomes[0], Retry) and "***" in outcomes[0].reason
    assert outcomes[1] == Delivered()
    for text in (repr(dest), caplog.text, *(repr(o) for o in outcomes)):
        assert API_KEY not in text
