"""The contract's event rules, checked without its Python hooks: the ingest fast path.

The contract's Structs validate field types in C and then run ``__post_init__`` in Python
(identity present, ids as strings, ...); per event that hook cost about as much as the
rest of the validation. Here the same fields are validated by Structs *derived* from the
contract's (same names, types and defaults, no hooks), and the hook's rules run inline.
An item this path does not accept is handed to the contract itself (``event_from_dict``),
which gives the reason or, if the two ever disagree, the final word: the fast path can only
make accepting cheaper, never accept what the contract would not. A property test pins
that both agree.
"""

from __future__ import annotations

from typing import Any

import msgspec

from headwater_spec import EVENT_CLASSES


def _derive(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    fields: list[Any] = []
    for field in msgspec.structs.fields(cls):
        if field.name == "extra":  # a client's `extra` is an unknown field, as in the contract
            continue
        if field.default is not msgspec.NODEFAULT:
            fields.append((field.name, field.type, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append(
                (field.name, field.type, msgspec.field(default_factory=field.default_factory))
            )
        else:
            fields.append((field.name, field.type))
    return msgspec.defstruct(f"Fast{cls.__name__}", fields, kw_only=True)


FAST_CLASSES: dict[str, type[msgspec.Struct]] = {
    kind: _derive(cls) for kind, cls in EVENT_CLASSES.items()
}


def as_id(value: Any) -> str | None:
    """Ids as strings, as the contract normalises them (7.0 -> "7")."""
    if value is None or type(value) is str:
        return value  # type: ignore[no-any-return]
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def fast_check(item: dict[str, Any], kind: str) -> Any | None:
    """The validated Struct when ``item`` is a valid event of ``kind``, else None (then ask
    the contract why)."""
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
