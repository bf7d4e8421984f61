"""The validation fast path agrees with the contract's event model on arbitrary items."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater_spec import EVENT_TYPES, EventError, event_from_dict
from headwater_tracking_api._fastcheck import accepts, as_id, convert_batch, fast_check

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
ids = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3)
items = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES)},
    optional={
        "userId": ids,
        "anonymousId": ids,
        "groupId": ids,
        "previousId": ids,
        "event": scalars,
        "name": scalars,
        "messageId": scalars,
        "timestamp": scalars,
        "originalTimestamp": scalars,
        "sentAt": scalars,
        "context": values,
        "properties": values,
        "traits": values,
        "integrations": values,
        "version": scalars,
        "channel": scalars,
        "extra": values,
        "unknown": values,
    },
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(item=items)
def test_fast_path_accepts_exactly_what_the_contract_accepts(item: dict[str, Any]) -> None:
    fast = fast_check(dict(item), item["type"])
    try:
        event = event_from_dict(dict(item))
    except EventError:
        assert fast is None, f"fast path accepted what the contract rejects: {item!r}"
        return
    assert fast is not None, f"fast path rejected a valid event: {item!r}"
    for name in ("userId", "anonymousId", "groupId", "previousId"):
        if hasattr(event, name):
            assert as_id(getattr(fast, name)) == getattr(event, name), name


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(items | scalars, max_size=4))
def test_batch_conversion_accepts_only_what_the_contract_accepts(batch: list[Any]) -> None:
    converted = convert_batch([dict(i) if isinstance(i, dict) else i for i in batch])
    if converted is None:
        return  # every item then goes through fast_check / the contract, pinned above
    assert len(converted) == len(batch)
    for item, fast in zip(batch, converted, strict=True):
        assert isinstance(item, dict), f"converted what is not an object: {item!r}"
        if not accepts(fast):
            continue  # "ask the contract"
        event = event_from_dict(dict(item))  # raises if the fast path accepted wrongly
        for name in ("userId", "anonymousId", "groupId", "previousId"):
            if hasattr(event, name):
                assert getattr(fast, name) == getattr(event, name), name
        assert (fast.messageId, fast.sentAt, fast.timestamp) == (
            event.messageId,
            event.sentAt,
            event.timestamp,
        )


def test_a_valid_batch_converts_whole_and_a_bad_item_fails_it() -> None:
    good = {"type": "track", "userId": "u", "event": "E", "context": {"a": 1}}
    converted = convert_batch([good, {**good, "type": "identify"}])
    assert converted is not None and all(accepts(e) for e in converted)
    assert convert_batch([good, {**good, "context": "not an object"}]) is None
    assert convert_batch([good, {**good, "type": "launch"}]) is None
    assert convert_batch([good, "not an object"]) is None
