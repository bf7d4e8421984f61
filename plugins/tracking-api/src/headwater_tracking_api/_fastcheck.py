"""The contract's event rules, checked without its Python hooks: the ingest fast path.

The contract's Structs validate field types in C and then run ``__post_init__`` in Python
(identity present, ids as strings, ...); per event that hook cost about as much as the
rest of the validation. Here the same fields are validated by Structs *derived* from the
contract's (same names, types and defaults, no hooks), and the hook's rules run inline.

The derived Structs type the object-valued fields (``context``, ``integrations``,
``properties``, ``traits``) as an empty Struct: that checks they are JSON objects without
copying them (converting them as ``dict[str, Any]`` copied every such dict per event, the
largest part of the cost). And they are tagged on ``type``, so a whole batch converts in one
call (``convert_batch``).

An item this path does not accept is handed to the contract itself (``event_from_dict``),
which gives the reason or, if the two ever disagree, the final word: the fast path can only
make accepting cheaper, never accept what the contract would not. Property tests pin that
they agree.
"""

from __future__ import annotations

import functools
import operator
import types
from typing import Any

import msgspec

from headwater_spec import EVENT_CLASSES

OBJECT_FIELDS = frozenset({"context", "integrations", "properties", "traits"})
"""The contract's ``dict[str, Any]`` fields: checked to be objects, not converted."""


class _Object(msgspec.Struct, frozen=True, gc=False):
    """Any JSON object (string keys, values unchecked): what ``dict[str, Any]`` accepts."""


_ANY_OBJECT = _Object()


def _derive(kind: str, cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    fields: list[Any] = []
    for field in msgspec.structs.fields(cls):
        if field.name == "extra":  # a client's `extra` is an unknown field, as in the contract
            continue
        if field.name in OBJECT_FIELDS:
            fields.append((field.name, _Object, _ANY_OBJECT))
        elif field.default is not msgspec.NODEFAULT:
            fields.append((field.name, field.type, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (field.name, field.type, msgspec.field(default_factory=field.default_factory))
            )
        else:
            fields.append((field.name, field.type))
    # gc=False: they hold only scalars, so no cycles; allocating them is cheaper untracked
    return msgspec.defstruct(
        f"Fast{cls.__name__}", fields, kw_only=True, tag=kind, tag_field="type", gc=False
    )


FAST_CLASSES: dict[str, type[msgspec.Struct]] = {
    kind: _derive(kind, cls) for kind, cls in EVENT_CLASSES.items()
}
_TRACK, _GROUP, _ALIAS = FAST_CLASSES["track"], FAST_CLASSES["group"], FAST_CLASSES["alias"]
_BATCH = types.GenericAlias(list, (functools.reduce(operator.or_, FAST_CLASSES.values()),))
"""``list[FastTrack | FastIdentify | ...]``, told apart by ``type``."""


def convert_batch(items: list[Any]) -> list[Any] | None:
    """Every item converted to its derived Struct in one call (their types, and ``type``
    itself), or None when any item fails (then each is checked on its own)."""
    try:
        return msgspec.convert(items, _BATCH, strict=False)  # type: ignore[no-any-return]
    except msgspec.ValidationError:
        return None


def accepts(event: Any) -> bool:
    """Whether ``event`` (from ``convert_batch``) passes the rules of the contract's hooks.
    False means "ask the contract": also for ids that are not strings, which the contract
    normalises (rare; the caller's slow path does it)."""
    user, anonymous = event.userId, event.anonymousId
    if (user is not None and type(user) is not str) or (
        anonymous is not None and type(anonymous) is not str
    ):
        return False
    cls = type(event)
    if cls is _TRACK:
        return bool((user or anonymous) and event.event)
    if cls is _GROUP:
        group = event.groupId
        return bool((user or anonymous) and type(group) is str and group)
    if cls is _ALIAS:
        previous = event.previousId
        return bool(user and type(previous) is str and previous)
    return bool(user or anonymous)


def as_id(value: Any) -> str | None:
    """Ids as strings, as the contract normalises them (7.0 -> "7")."""
    if value is None or type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def fast_check(item: dict[str, Any], kind: str) -> Any | None:
    """The validated Struct when ``item`` is a valid event of ``kind``, else None (then ask
    the contract why). Ids that are numbers are accepted as the contract accepts them; the
    caller normalises them with ``as_id``."""
    try:
        event: Any = msgspec.convert(item, FAST_CLASSES[kind], strict=False)
    except msgspec.ValidationError:
        return None
    if kind == "alias":
        return event if as_id(event.userId) and as_id(event.previousId) else None
    if not as_id(event.userId) and not as_id(event.anonymousId):
        return None
    if kind == "track" and not event.event:
        return None
    if kind == "group" and not as_id(event.groupId):
        return None
    return event
