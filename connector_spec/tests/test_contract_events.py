"""The event model: every type round-trips (unknown fields included) and every invalid
shape is refused with a message that names the field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from headwater_spec import (
    DELIVERED,
    EVENT_CLASSES,
    EVENT_TYPES,
    Alias,
    Delivered,
    EventError,
    Group,
    Identify,
    Outcome,
    Rejected,
    Retry,
    Track,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
)

COMMON: dict[str, Any] = {
    "messageId": "m-1",
    "timestamp": "2024-05-01T12:00:00.000Z",
    "originalTimestamp": "2024-05-01T11:59:59.000Z",
    "sentAt": "2024-05-01T12:00:00.100Z",
    "receivedAt": "2024-05-01T12:00:00.200Z",
    "anonymousId": "anon-1",
    "userId": "user-1",
    "context": {"ip": "203.0.113.7", "library": {"name": "analytics.js", "version": "5"}},
    "integrations": {"All": True, "Mixpanel": False},
    "version": 2,
    "channel": "server",
}
UNKNOWN: dict[str, Any] = {
    "writeKey": "wk",
    "extra": "a client's own top-level key named like our holder",
    "_metadata": {"bundled": ["Segment.io"], "unbundled": []},
    "nested": {"deep": [1, 2.5, None, True]},
}
EXAMPLES: dict[str, dict[str, Any]] = {
    "track": {"type": "track", "event": "Order Completed", "properties": {"total": 9.5}},
    "identify": {"type": "identify", "traits": {"email": "a@example.com", "plan": "pro"}},
    "page": {"type": "page", "name": "Home", "category": "Docs", "properties": {"path": "/"}},
    "screen": {"type": "screen", "name": "Settings", "properties": {"tab": 2}},
    "group": {"type": "group", "groupId": "acme", "traits": {"employees": 40}},
    "alias": {"type": "alias", "previousId": "anon-1"},
}


def test_examples_cover_every_event_type() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES) == set(EVENT_CLASSES)


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_event_type_round_trips_with_unknown_fields_kept(kind: str) -> None:
    original = {**COMMON, **EXAMPLES[kind], **UNKNOWN}
    event = decode_event(msgspec.json.encode(original))
    assert type(event) is EVENT_CLASSES[kind]
    assert event.event_type == kind
    assert event.extra == UNKNOWN
    assert msgspec.json.decode(encode_event(event)) == original
    assert event_to_dict(event_from_dict(event_to_dict(event))) == original


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_minimal_event_round_trips_without_adding_fields(kind: str) -> None:
    minimal = {**EXAMPLES[kind], "userId": "u"}
    assert event_to_dict(event_from_dict(minimal)) == minimal


def test_numeric_ids_become_strings_as_segment_treats_them() -> None:
    event = event_from_dict({"type": "group", "userId": 42, "groupId": 7.0})
    assert isinstance(event, Group)
    assert (event.userId, event.groupId) == ("42", "7")


def test_anonymous_id_alone_is_enough() -> None:
    event = event_from_dict({"type": "identify", "anonymousId": "a-1"})
    assert isinstance(event, Identify)
    assert event.user_key == "a-1"


def test_a_built_event_encodes_its_extra_fields_at_top_level() -> None:
    event = Track(event="Signed Up", userId="u", extra={"plan": "pro"})
    assert msgspec.json.decode(encode_event(event)) == {
        "type": "track",
        "event": "Signed Up",
        "userId": "u",
        "plan": "pro",
    }


INVALID = [
    pytest.param({"type": "identify", "traits": {}}, "`userId` or `anonymousId`", id="no-identity"),
    pytest.param(
        {"type": "track", "userId": "", "anonymousId": None, "event": "x"},
        "`userId` or `anonymousId`",
        id="empty-identity",
    ),
    pytest.param({"type": "track", "userId": "u"}, "`event`", id="track-without-event"),
    pytest.param({"type": "track", "userId": "u", "event": ""}, "`event`", id="track-empty-event"),
    pytest.param({"type": "group", "userId": "u"}, "`groupId`", id="group-without-groupId"),
    pytest.param({"type": "alias", "previousId": "p"}, "`userId`", id="alias-without-userId"),
    pytest.param(
        {"type": "alias", "anonymousId": "a", "previousId": "p"},
        "`userId`",
        id="alias-anonymous-only",
    ),
    pytest.param({"type": "alias", "userId": "u"}, "`previousId`", id="alias-without-previousId"),
    pytest.param(
        {"type": "page", "userId": "u", "context": "web"}, "`context`", id="context-not-object"
    ),
    pytest.param(
        {"type": "track", "userId": "u", "event": "x", "properties": [1]},
        "`properties`",
        id="properties-not-object",
    ),
    pytest.param(
        {"type": "identify", "userId": "u", "traits": "vip"}, "`traits`", id="traits-not-object"
    ),
    pytest.param(
        {"type": "track", "userId": {"id": 1}, "event": "x"}, "`userId`", id="userId-object"
    ),
    pytest.param(
        {"type": "track", "userId": "u", "event": "x", "timestamp": 5},
        "`timestamp`",
        id="timestamp-not-string",
    ),
    pytest.param({"type": "checkout", "userId": "u"}, "`type`", id="unknown-type"),
    pytest.param({"userId": "u"}, "`type`", id="no-type"),
]


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_invalid_event_is_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(EventError) as caught:
        event_from_dict(body)
    assert field in str(caught.value)
    with pytest.raises(EventError) as decoded:
        decode_event(msgspec.json.encode(body))
    assert str(decoded.value) == str(caught.value)


def test_alias_message_names_both_ids_when_both_missing() -> None:
    with pytest.raises(EventError, match="userId"):
        event_from_dict({"type": "alias"})
    assert isinstance(event_from_dict({"type": "alias", "userId": "u", "previousId": "p"}), Alias)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b'"track"', "JSON object")],
)
def test_what_is_not_an_event_object_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(EventError, match=message):
        decode_event(data)


def test_outcomes_round_trip_as_a_tagged_union() -> None:
    outcomes: list[Outcome] = [
        DELIVERED,
        Retry(reason="429 Too Many Requests", retry_after=2.5),
        Retry(reason="timeout"),
        Rejected(reason="400: invalid token"),
    ]
    data = msgspec.json.encode(outcomes)
    assert msgspec.json.decode(data, type=list[Outcome]) == outcomes
    assert msgspec.json.decode(data)[1] == {
        "type": "retry",
        "reason": "429 Too Many Requests",
        "retry_after": 2.5,
    }
    assert isinstance(msgspec.json.decode(b'{"type":"delivered"}', type=Outcome), Delivered)
