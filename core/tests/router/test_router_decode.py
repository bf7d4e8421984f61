"""Delivery decodes stored events straight into their models; these pin that the result is
exactly what ``event_from_dict`` gives (unknown fields, odd ids, invalid events included)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from headwater.log import LmdbLog, LogRecord
from headwater.router import list_dead_letters
from headwater.router._decode import decode_header, event_dict, typed_event
from headwater_spec import EVENT_CLASSES, EVENT_TYPES, EventError, event_from_dict, event_to_dict

from .conftest import Recorder, make_loop, settle, track

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
        header = decode_header(stored(event))
        try:
            expected = event_from_dict(event)
        except EventError:
            expected = None
        model = typed_event(header.event)
        if expected is None:
            assert model is None, event  # left to event_from_dict, which gives the reason
            continue
        if not set(event) <= set(expected.__struct_fields__) - {"extra"} | {"type"}:
            assert model is None, event  # unknown keys: event_from_dict keeps them in extra
            continue
        assert model is not None, event
        assert model == expected, event
        assert event_to_dict(model) == event_to_dict(expected)
        assert event_dict(header.event) == event
        taken += 1
    assert taken > 200  # the fast path is really taken


def test_the_stored_event_comes_back_as_it_was_stored() -> None:
    event = {"type": "track", "event": "E", "userId": 5, "properties": {"n": [1, 2.5, None]}}
    assert event_dict(decode_header(stored(event)).event) == event
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
