"""Stored events to what delivery needs of them: routing fields, then the typed model.

The log keeps each event as the client's own msgpack map inside its record
(``LogRecord``). The general way in, ``event_from_dict``, decodes that map into dicts first
and then converts those into a Struct, building every event twice. Delivery instead works
in two steps, each one msgspec decode of the whole stored record:

- the reader decodes the record with its event as a ``Route`` (``route_record``): the
  type, the ids and ``integrations``, which filter the event and pick its lane, and every
  other field of that type left as ``msgspec.Raw`` (nothing built) while any key the
  type does not know fails the decode. So one decode gives the routing fields and says
  whether the model can be decoded straight from msgpack;
- the lane decodes the record's event into the model (``model_of``) right before the
  send, into the tagged union, with the same lax rules as ``event_from_dict``'s
  ``convert`` (``strict=False``). What waits in the lanes (up to ``max_in_flight`` events)
  is then the stored bytes and a few small objects per event instead of the whole model,
  and the model is encoded by the destination while it is still in the CPU caches:
  measured, ~2-4 us less per event than decoding the model in the reader.

Only events that cannot be taken as they are go the general way, which then decides
exactly as it always did:

- an event with a key the model does not know: ``event_from_dict`` keeps such keys in
  ``extra`` (a top-level ``extra`` key included), which needs the dict;
- an event that fails validation, so the reason recorded is ``event_from_dict``'s.

The stored record stays as it was read (bytes) until a dead letter or a parked retry
needs the event as a dict, which is rare.

Measured with callgrind on the delivery benchmark's events, router -> file, whole process
per event: ~53k instructions before this layout (a header decode, a routing decode, then
in the lane the model decode and a second decode of the keys to find unknown ones) and
~46k after it. Replay's reader, which needs the model at once for the job's filter,
still uses ``typed_event`` (model decode plus the key check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Union

import msgspec

from headwater_spec import EVENT_CLASSES, BaseEvent, Event, event_from_dict

from ..log import LogRecord, RecordHeader

StoredEvent = dict[str, Any] | bytes
"""An event as the log stored it: decoded into a dict, or still its whole stored record
(``LogRecord`` as msgpack)."""

_header = msgspec.msgpack.Decoder(RecordHeader).decode
_typed = msgspec.msgpack.Decoder(Event, strict=False).decode
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


class Route(msgspec.Struct, gc=False, tag_field="type", forbid_unknown_fields=True):
    """What the reader needs of an event to route it (filters, lane) before its model is
    decoded. The types are the model's, decoded as leniently, so these fields come out as
    the model's would. One subclass per event type names that type's other fields as
    ``msgspec.Raw`` (a view, nothing built) and refuses any other key: an event that
    decodes into its Route has no key the model does not know, so its model can be
    decoded without a second look for unknown keys."""

    userId: str | int | float | None = None
    anonymousId: str | int | float | None = None
    integrations: dict[str, Any] = {}
    kind: ClassVar[str]

    @property
    def user_key(self) -> str:
        """The model's ``user_key``: userId, else anonymousId, ids as strings."""
        user = self.userId
        if user and type(user) is str:  # the usual case, no call
            return user
        return str(_as_id(user) or _as_id(self.anonymousId) or "")


def _route(kind: str, cls: type[BaseEvent]) -> type[Route]:
    names = sorted(set(cls.__struct_fields__) - set(Route.__struct_fields__) - {"extra"})
    return msgspec.defstruct(  # type: ignore[return-value]  # a subclass of Route
        f"{cls.__name__}Route",
        [(name, msgspec.Raw, _ABSENT) for name in names],
        bases=(Route,),
        tag=kind,
        namespace={"kind": kind},
        gc=False,
        forbid_unknown_fields=True,
    )


if TYPE_CHECKING:
    AnyRoute = Route
else:
    AnyRoute = Union[tuple(_route(kind, cls) for kind, cls in EVENT_CLASSES.items())]  # noqa: UP007


class RoutedRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A stored record (``LogRecord``'s layout) with its event decoded only as its Route."""

    seq: int
    source: str
    received_at: int
    event: AnyRoute


class ModelRecord(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A stored record with its event decoded into the model."""

    seq: int
    source: str
    received_at: int
    event: Event


_routed = msgspec.msgpack.Decoder(RoutedRecord, strict=False).decode
decode_routed = _routed
"""``route_record`` without the call around it, for the reader's loop (raises
``msgspec.ValidationError`` where that returns None)."""
_model_record = msgspec.msgpack.Decoder(ModelRecord, strict=False).decode
decode_model = _model_record
"""The fast half of ``model_of`` for the lane's loop (raises ``msgspec.ValidationError``
where that falls back to ``event_from_dict``)."""
_record_event = msgspec.msgpack.Decoder(LogRecord).decode


def _as_id(value: str | float | None) -> str | None:
    """The contract's id rule (7.0 -> "7"); a test pins that both agree."""
    if value is None or type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def route_record(raw: bytes) -> RoutedRecord | None:
    """A stored record with its event's routing fields, in one decode; None when the
    event has a key its model does not know or does not match even these fields (it then
    goes through ``event_from_dict`` at once)."""
    try:
        return _routed(raw)
    except msgspec.ValidationError:
        return None


def model_of(event: StoredEvent) -> Event:
    """The model of a stored event (a record that ``route_record`` took, so without unknown
    keys, or a dict): straight from msgpack when valid, else through ``event_from_dict``,
    which raises EventError with the reason."""
    if isinstance(event, dict):
        return event_from_dict(event)
    try:
        model: Event = _model_record(event).event
    except msgspec.ValidationError:
        return event_from_dict(event_dict(event))
    return model


def event_dict(event: StoredEvent) -> dict[str, Any]:
    """The stored event as a dict (what dead letters and parked retries keep)."""
    if isinstance(event, dict):
        return event
    return _record_event(event).event
