"""The validation fast path agrees with the contract's event model on arbitrary items."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from headwater_spec import EVENT_TYPES, EventError, event_from_dict
from headwater_tracking_api._fastcheck import as_id, fast_check

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


@settings(max_examples=600)
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
