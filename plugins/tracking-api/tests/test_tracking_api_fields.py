"""Server fields, merging, per-item validation and the 503 path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater_spec import IngestUnavailableError


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_received_at_and_message_id_are_added(client: Any) -> None:
    before = datetime.now(UTC)
    await client.request("/v1/identify", {"userId": "u", "traits": {"a": 1}})
    event = client.context.events[0]
    assert event["type"] == "identify"
    assert before - timedelta(seconds=1) <= parse(event["receivedAt"]) <= datetime.now(UTC)
    assert len(event["messageId"]) == 36


async def test_missing_message_ids_are_distinct_version_4_uuids(client: Any) -> None:
    batch = [{"type": "track", "userId": "u", "event": "E"} for _ in range(40)]
    await client.request("/v1/batch", {"batch": batch})
    ids = [uuid.UUID(event["messageId"]) for event in client.context.events]
    assert len(set(ids)) == 40
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    assert [str(i) for i in ids] == [event["messageId"] for event in client.context.events]


async def test_client_message_id_is_kept(client: Any) -> None:
    await client.request("/v1/track", {"userId": "u", "event": "E", "messageId": "abc"})
    assert client.context.events[0]["messageId"] == "abc"


async def test_timestamp_is_corrected_for_client_clock_skew(client: Any) -> None:
    # The client's clock is one hour ahead: it stamped the event 5 s before sending.
    sent = datetime.now(UTC) + timedelta(hours=1)
    happened = sent - timedelta(seconds=5)
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "timestamp": happened.isoformat()}
        ],
        "sentAt": sent.isoformat(),
    }
    await client.request("/v1/batch", body)
    event = client.context.events[0]
    received = parse(event["receivedAt"])
    corrected = parse(event["timestamp"])
    assert abs((received - corrected) - timedelta(seconds=5)) < timedelta(milliseconds=2)
    assert event["originalTimestamp"] == happened.isoformat()
    assert event["sentAt"] == sent.isoformat()


async def test_timestamp_without_sent_at_is_kept(client: Any) -> None:
    await client.request(
        "/v1/track", {"userId": "u", "event": "E", "timestamp": "2020-01-02T03:04:05.678Z"}
    )
    assert client.context.events[0]["timestamp"] == "2020-01-02T03:04:05.678Z"


async def test_no_timestamp_means_received_at(client: Any) -> None:
    await client.request("/v1/track", {"userId": "u", "event": "E"})
    event = client.context.events[0]
    assert event["timestamp"] == event["receivedAt"]


async def test_batch_context_and_integrations_merge_into_items_item_wins(client: Any) -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "context": {"ip": "1.1.1.1"}},
            {"type": "track", "userId": "u", "event": "F", "integrations": {"All": True}},
        ],
        "context": {"ip": "9.9.9.9", "library": {"name": "lib"}},
        "integrations": {"All": False, "Mixpanel": True},
    }
    await client.request("/v1/batch", body)
    first, second = client.context.events
    assert first["context"] == {"ip": "1.1.1.1", "library": {"name": "lib"}}
    assert first["integrations"] == {"All": False, "Mixpanel": True}
    assert second["context"] == {"ip": "9.9.9.9", "library": {"name": "lib"}}
    assert second["integrations"] == {"All": True, "Mixpanel": True}


async def test_the_path_sets_the_type(client: Any) -> None:
    await client.request("/v1/page", {"type": "track", "anonymousId": "a", "name": "Home"})
    assert client.context.events[0]["type"] == "page"


async def test_numeric_ids_become_strings_and_unknown_fields_survive(client: Any) -> None:
    await client.request(
        "/v1/group", {"userId": 42, "groupId": 7.0, "_metadata": {"bundled": ["x"]}}
    )
    event = client.context.events[0]
    assert (event["userId"], event["groupId"]) == ("42", "7")
    assert event["_metadata"] == {"bundled": ["x"]}


async def test_another_types_id_is_an_unknown_field_kept_as_sent(client: Any) -> None:
    """A group with a numeric ``previousId`` (an alias's id) failed the request with a 500
    (found by tests/test_ingest_fuzz.py): only the type's own ids become strings."""
    body = {"type": "group", "anonymousId": 0, "previousId": 0, "groupId": "g", "": None}
    response = await client.request("/v1/batch", {"batch": [{"": ""}, body]})
    assert response.status == 200
    assert client.answer(response)["accepted"] == 1
    event = client.context.events[0]
    assert (event["anonymousId"], event["previousId"]) == ("0", 0)


async def test_invalid_items_are_rejected_with_reasons_and_valid_ones_stored(
    client: Any,
) -> None:
    body = {
        "batch": [
            {"type": "track", "userId": "u", "event": "ok"},
            {"type": "track", "event": "no identity"},
            {"type": "launch", "userId": "u"},
            "not an object",
            {"type": "alias", "userId": "u"},
        ]
    }
    response = await client.request("/v1/batch", body)
    assert response.status == 200
    result = client.answer(response)
    assert (result["accepted"], result["rejected"]) == (1, 4)
    reasons = [e["message"] for e in result["errors"]]
    assert "`userId` or `anonymousId` is required" in reasons[0]
    assert "`type` must be one of" in reasons[1]
    assert "JSON object" in reasons[2]
    assert "previousId" in reasons[3]
    assert [e["index"] for e in result["errors"]] == [1, 2, 3, 4]
    assert client.context.appends == 1  # one commit for the accepted and the rejected
    assert [r.raw for r in client.context.rejections][2] == "not an object"


async def test_an_invalid_single_event_is_kept_as_rejected(client: Any) -> None:
    response = await client.request("/v1/track", {"userId": "u"})
    assert response.status == 200
    assert client.answer(response)["rejected"] == 1
    assert "`event`" in client.context.rejections[0].reason


async def test_log_unavailable_is_503_with_retry_after(client: Any) -> None:
    client.context.fail = IngestUnavailableError("disk full", retry_after=30)
    response = await client.request("/v1/track", {"userId": "u", "event": "E"})
    assert response.status == 503
    assert ("Retry-After", "30") in response.headers
    assert client.answer(response)["code"] == "unavailable"
