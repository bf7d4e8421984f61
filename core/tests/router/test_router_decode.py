"""Delivery routes stored events on a few decoded fields and decodes their models straight
from msgpack; these pin that the result is exactly what ``event_from_dict`` gives (unknown
fields, odd ids, invalid events included)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from headwater.log import LmdbLog, LogRecord
from headwater.router import list_dead_letters
from headwater.router._decode import (
    decode_header,
    event_dict,
    model_of,
    route_record,
    typed_event,
)
from headwater_spec import (
    DELIVERED,
    EVENT_CLASSES,
    EVENT_TYPES,
    Event,
    EventError,
    Outcome,
    Retry,
    event_from_dict,
    event_to_dict,
)

from .conftest import Recorder, make_loop, settle, track, wait_until

pytestmark = pytest.mark.timeout(60)

_ODD_VALUES: list[Any] = [None, "", "x", 0, 7, 7.0, 7.5, -1, True, [], {}, {"a": 1}, [1, "b"]]
_FIELDS = [
    "messageId", "timestamp", "originalTimestamp", "sentAt", "receivedAt", "userId",
    "anonymousId", "context", "integrations", "version", "channel", "event", "properties",
    "traits", "name", "category", "groupId", "previousId",
]  # fmt: skip
_OWN = {kind: sorted(set(cls.__struct_fields__) - {"extra"}) for kind, cls in EVENT_CLASSES.items()}
_REQUIRED: dict[Any, dict[str, str]] = {
    "track": {"event": "E"},
    "group": {"groupId": "g"},
    "alias": {"previousId": "p"},
}
_UNKNOWN = ["extra", "_metadata", "writeKey", "zz", "type2"]
_KNOWN = {cls: set(cls.__struct_fields__) - {"extra"} | {"type"} for cls in EVENT_CLASSES.values()}


def generated(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Events of every type with fields set to plausible and implausible values."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = rng.choice([*EVENT_TYPES, "bogus", 3])
        event: dict[str, Any] = {"type": kind, "userId": f"u{i}", **_REQUIRED.get(kind, {})}
        own = _OWN.get(kind, _FIELDS) if rng.random() < 0.9 else _FIELDS
        for name in rng.sample(own, rng.randint(0, 6)):
            event[name] = rng.choice([*_ODD_VALUES, f"v{i}"])
        if rng.random() < 0.3:
            event[rng.choice(_UNKNOWN)] = rng.choice(_ODD_VALUES)
        if rng.random() < 0.1:
            event.pop("type")
        out.append(event)
    return out


def stored(event: dict[str, Any]) -> bytes:
    return msgspec.msgpack.encode(LogRecord(1, "web", 2, event))


def test_fast_decode_gives_what_event_from_dict_gives() -> None:
    taken = 0
    for event in generated(random.Random(4), 3000):
        raw = stored(event)
        try:
            expected = event_from_dict(event)
        except EventError:
            expected = None
        known = expected is not None and set(event) <= _KNOWN[type(expected)]
        record = route_record(raw)
        if known:  # what the reader routes on is what the model says
            assert expected is not None and record is not None, event
            route = record.event
            assert route.user_key == expected.user_key, event
            assert route.kind == expected.event_type, event
            assert route.integrations == expected.integrations, event
            assert (record.seq, record.source, record.received_at) == (1, "web", 2)
        elif expected is not None:  # unknown keys: event_from_dict keeps them in extra
            assert record is None, event
        if record is not None:  # the lane's decode of what the reader took
            assert_same_model(raw, expected, event)
        assert_typed_event(decode_header(raw).event, expected, event)
        assert event_dict(raw) == event
        taken += record is not None and expected is not None
    assert taken > 200  # the fast path is really taken


def assert_same_model(raw: bytes, expected: Event | None, event: dict[str, Any]) -> None:
    if expected is None:
        with pytest.raises(EventError) as caught:
            model_of(raw)
        with pytest.raises(EventError) as reference:
            event_from_dict(event)
        assert str(caught.value) == str(reference.value)
    else:
        model = model_of(raw)
        assert model == expected, event
        assert event_to_dict(model) == event_to_dict(expected)


def assert_typed_event(
    stored_event: msgspec.Raw, expected: Event | None, event: dict[str, Any]
) -> None:
    """``typed_event`` (replay's decode, in its reader) takes only what has no unknown key."""
    model = typed_event(stored_event)
    if expected is None or not set(event) <= _KNOWN[type(expected)]:
        assert model is None, event
    else:
        assert model == expected, event


def test_the_stored_event_comes_back_as_it_was_stored() -> None:
    event = {"type": "track", "event": "E", "userId": 5, "properties": {"n": [1, 2.5, None]}}
    assert event_dict(stored(event)) == event
    assert event_dict(event) is event


async def test_unknown_fields_and_invalid_events_behave_as_before(log: LmdbLog) -> None:
    log.append_sync(
        "web",
        [
            track(1, _metadata={"bundled": ["x"]}, extra="client's own"),
            track(2, integrations={"All": False}),  # filtered on the fast path
            {"type": "track", "messageId": "m3", "event": "E"},  # no user: dead letter
            track(4, userId=42),
        ],
    )
    dest = Recorder()
    loop = make_loop(log, dest)
    await loop.start()
    try:
        await settle(loop)
    finally:
        await loop.stop()
    assert dest.delivered_ids() == ["m1", "m4"]
    first = event_to_dict(dest.delivered[0])
    assert first["_metadata"] == {"bundled": ["x"]} and first["extra"] == "client's own"
    assert dest.delivered[1].userId == "42"
    letters = list_dead_letters(log, "rec")
    assert [d.seq for d in letters] == [3]
    assert letters[0].reason.startswith("stored event does not match the event model: ")
    assert "userId" in letters[0].reason
    assert letters[0].event == {"type": "track", "messageId": "m3", "event": "E"}
    assert loop.state is not None and loop.state.record.filtered == 1


async def test_an_invalid_event_of_a_held_back_user_is_dead_lettered_not_parked(
    log: LmdbLog,
) -> None:
    """The lane decodes models right before sending: an event that does not match the
    model gets the reader's dead letter even when its user waits behind a retry."""
    down = [True]

    def behaviour(batch: Sequence[Event]) -> list[Outcome]:
        return [Retry(reason="HTTP 503") if down[0] else DELIVERED for _ in batch]

    dest = Recorder(behaviour)
    loop = make_loop(log, dest, start="now")
    await loop.start()
    try:
        await log.append("web", [track(1, user="bad")])
        loop.notify()
        await wait_until(lambda: loop.pending == 1)  # m1 parked: user "bad" is held back
        await log.append("web", [track(2, user="bad", timestamp=5), track(3, user="bad")])
        loop.notify()
        await wait_until(lambda: loop.pending == 2)  # m3 parked behind m1; m2 is not
        down[0] = False
        await wait_until(lambda: dest.delivered_ids() == ["m1", "m3"])
        await settle(loop)
    finally:
        await loop.stop()
    letters = list_dead_letters(log, "rec")
    assert [(d.seq, d.attempts) for d in letters] == [(2, 0)]
    assert letters[0].reason.startswith("stored event does not match the event model: ")
    assert "timestamp" in letters[0].reason
