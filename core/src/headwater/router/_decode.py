"""Stored events to what delivery needs of them: routing fields, then the typed model.

The log keeps each event as the client's own msgpack map (``LogRecord.event``). The general
way in, ``event_from_dict``, decodes that map into dicts first and then converts those into
a Struct, building every event twice. Delivery instead works in two steps:

- the reader decodes only the ``Routing`` fields (type, ids, ``integrations``; msgspec
  skips the rest without building it) to filter the event and pick its lane;
- the lane decodes the model (``model_of``) right before the send, straight from the
  stored bytes into the tagged union, with the same lax rules as ``event_from_dict``'s
  ``convert`` (``strict=False``). What waits in the lanes (up to ``max_in_flight`` events)
  is then a few small objects per event instead of the whole model, and the model is
  encoded by the destination while it is still in the CPU caches: measured, ~2-4 us less
  per event than decoding the model in the reader.

Only events that cannot be taken as they are go the general way, which then decides
exactly as it always did:

- an event with a key the model does not know: ``event_from_dict`` keeps such keys in
  ``extra`` (a top-level ``extra`` key included), which needs the dict. A second, cheap
  decode finds them: into a Struct of the type's field names that forbids unknown
  fields, each value left as raw msgpack (cheaper than a dict of the keys: no key
  strings, and absent fields share one default);
- an event that fails validation, so the reason recorded is ``event_from_dict``'s.

The event itself stays as msgpack (``msgspec.Raw``, a view of the record's bytes) until a
dead letter or a parked retry needs it as a dict, which is rare.

Measured on the delivery benchmark's events (2-core VM): the model in ~1.9 us per event
instead of ~3 us, and one copy of the nested objects alive per event instead of two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from headwater_spec import EVENT_CLASSES, BaseEvent, Event, event_from_dict

from ..log import RecordHeader

StoredEvent = dict[str, Any] | msgspec.Raw
"""An event as the log stored it: decoded into a dict, or still msgpack."""

_header = msgspec.msgpack.Decoder(RecordHeader).decode
_typed = msgspec.msgpack.Decoder(Event, strict=False).decode
_any = msgspec.msgpack.Decoder().decode
_ABSENT = msgspec.Raw()


def _key_check(cls: type[BaseEvent]) -> Callable[[msgspec.Raw], object]:
    """A decode that fails on any key ``cls`` does not know (and builds nothing else)."""
    names = sorted(set(cls.__struct_fields__) - {"extra"} | {"type"})
    keys = msgspec.defstruct(
        f"{cls.__name__}Keys",
        [(name, msgspec.Raw, _ABSENT) for name in names],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.msgpack.Decoder(keys).decode


_KEY_CHECKS = {cls: _key_check(cls) for cls in EVENT_CLASSES.values()}


def decode_header(raw: bytes) -> RecordHeader:
    """Sequence, source and receive time of a stored record; its event left as msgpack."""
    return _header(raw)


def typed_event(event: msgspec.Raw) -> Event | None:
    """The stored event as its model, or None when it must go through ``event_from_dict``
    (unknown keys, or not valid against the model)."""
    try:
        model: Event = _typed(event)
        _KEY_CHECKS[type(model)](event)
    except msgspec.ValidationError:
        return None
    return model


class Routing(msgspec.Struct, gc=False):
    """What the reader needs of an event to route it (filters, lane) before its model is
    decoded: msgspec skips the other fields without building them. The types are the
    model's, decoded as leniently, so these fields come out as the model's would."""

    type: str
    userId: str | int | float | None = None
    anonymousId: str | int | float | None = None
    integrations: dict[str, Any] = {}

    @property
    def user_key(self) -> str:
        """The model's ``user_key``: userId, else anonymousId, ids as strings."""
        return str(_as_id(self.userId) or _as_id(self.anonymousId) or "")


_routing = msgspec.msgpack.Decoder(Routing, strict=False).decode


def _as_id(value: str | float | None) -> str | None:
    """The contract's id rule (7.0 -> "7"); a test pins that both agree."""
    if value is None or type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def routing(event: msgspec.Raw) -> Routing | None:
    """The routing fields of a stored event; None when even these do not match the
    model (the event then goes through ``event_from_dict`` at once)."""
    try:
        found = _routing(event)
    except msgspec.ValidationError:
        return None
    return found if found.type in EVENT_CLASSES else None


def model_of(event: StoredEvent) -> Event:
    """The stored event's model: straight from msgpack when it can be, else through
    ``event_from_dict`` (unknown keys kept in ``extra``). Raises EventError."""
    if not isinstance(event, dict):
        model = typed_event(event)
        if model is not None:
            return model
        event = event_dict(event)
    return event_from_dict(event)


def event_dict(event: StoredEvent) -> dict[str, Any]:
    """The stored event as a dict (what dead letters and parked retries keep)."""
    if isinstance(event, dict):
        return event
    decoded: dict[str, Any] = _any(event)
    return decoded
