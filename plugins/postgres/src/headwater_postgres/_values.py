"""Database values as event JSON, and as the stable text that ids and checkpoints use.

Event properties are JSON, so a row's values are converted: timestamps to ISO 8601 (UTC,
``Z``), numerics to numbers (exact integers stay integers, other numerics become floats),
UUIDs and network addresses to strings, bytes to base64, intervals to seconds.

``stable_text`` is separate on purpose: it must be exact (a numeric keeps every digit) and
identical across runs, since the deterministic messageId and the checkpoint are built from it,
and PostgreSQL must read it back as the same value when it is bound as a query parameter.

These run once per row and column, so they dispatch on the exact type through a dict first.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any


def iso_utc(value: datetime) -> str:
    """ISO 8601 with a ``Z``; a naive datetime (timestamp without time zone) is taken as UTC."""
    if value.tzinfo is None:
        text = value.isoformat()
    else:
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        text = value.isoformat()[:-6]
    micro = value.microsecond
    if not micro:
        return text + ".000Z"
    if not micro % 1000:
        return text[:-3] + "Z"
    return text + "Z"


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _decimal(value: Decimal) -> int | float | None:
    number = float(value)
    if not math.isfinite(number):
        return None
    if number.is_integer():
        # Past 2**53 a float is no longer exact; such integers keep every digit.
        if abs(number) < 2**53:
            return int(number)
        return int(value) if value == value.to_integral_value() else number
    return number


def _same(value: Any) -> Any:
    return value


def _bytes(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def _isoformat(value: date | time) -> str:
    return value.isoformat()


def _mapping(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): json_value(v) for k, v in value.items()}


def _sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [json_value(v) for v in value]


_JSON: dict[type, Callable[[Any], Any]] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    float: _float,
    Decimal: _decimal,
    datetime: iso_utc,
    date: _isoformat,
    time: _isoformat,
    timedelta: _seconds,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    dict: _mapping,
    list: _sequence,
    tuple: _sequence,
}


def json_value(value: Any) -> Any:
    """``value`` as JSON-ready data for an event's properties or traits."""
    convert = _JSON.get(type(value))
    if convert is not None:
        return convert(value)
    for kind, convert in _JSON.items():
        if isinstance(value, kind):
            return convert(value)
    return str(value)


def stable_text(value: Any) -> str:
    """Exact text of a cursor or key value, which PostgreSQL parses back to the same value."""
    kind = type(value)
    if kind is int or kind is str:
        return str(value)
    if kind is datetime:
        if value.tzinfo is None or value.tzinfo is UTC:
            return str(value.isoformat())
        return str(value.astimezone(UTC).isoformat())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)
