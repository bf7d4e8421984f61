"""Database values as event JSON, and as the stable text that ids and checkpoints use.

Event properties are JSON, so a row's values are converted: timestamps to ISO 8601 (UTC,
``Z``), numerics to numbers (exact integers stay integers, other numerics become floats),
UUIDs and network addresses to strings, bytes to base64, intervals to seconds.

``stable_text`` is separate on purpose: it must be exact (a numeric keeps every digit) and
identical across runs, since the deterministic messageId and the checkpoint are built from it,
and PostgreSQL must read it back as the same value when it is bound as a query parameter.

These run once per row and column, so they dispatch on the exact type through a dict first.

The source reads ``timestamptz``, ``timestamp`` and ``numeric`` columns as the server's text
(``TEXT_LOADED``): building a datetime or Decimal only to format it again costs several
microseconds per value, most of a row's budget. The ``*_text`` functions below turn that text
into exactly what ``json_value`` and ``stable_text`` make of the parsed value (the same JSON,
the same messageIds and checkpoints); test_postgres_source_text_values.py compares the two on
values from the server.
The session runs with ``TimeZone=UTC`` and ``DateStyle=ISO``, so a timestamptz reads
``YYYY-MM-DD HH:MM:SS[.f]+00``, fractional zeros trimmed.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.postgres import types as pg_types

TIMESTAMPTZ_OID = pg_types["timestamptz"].oid
TIMESTAMP_OID = pg_types["timestamp"].oid
NUMERIC_OID = pg_types["numeric"].oid
TEXT_LOADED = ("timestamptz", "timestamp", "numeric")
"""Types the source reads as text (see the module docstring)."""
_RANGES = ("tstzrange", "tsrange", "numrange", "tstzmultirange", "tsmultirange", "nummultirange")
NOT_TEXT_LOADABLE = frozenset(
    {pg_types[name].oid for name in _RANGES}
    | {pg_types[name].array_oid for name in (*TEXT_LOADED, *_RANGES)}
)
"""Columns psycopg loads through the loaders of ``TEXT_LOADED`` types (arrays and ranges of
them): a result with one of these is read with psycopg's own loaders throughout."""
PLAIN_OIDS = frozenset(
    pg_types[n].oid
    for n in ("bool", "int2", "int4", "int8", "oid", "text", "varchar", "bpchar", "name")
)
"""Types psycopg loads as str, int or bool: their values are JSON as they are."""
_STR_OIDS = frozenset(
    pg_types[n].oid for n in ("int2", "int4", "int8", "oid", "text", "varchar", "bpchar", "name")
)


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


def _iso_body(text: str, zoned: bool) -> str:
    """``YYYY-MM-DDTHH:MM:SS[.f]`` (1 to 6 fractional digits) of a timestamp's text. A value
    Python's datetime cannot hold (infinity, BC, past year 9999) fails the pass, as it did
    when psycopg's own loader refused it."""
    if zoned:
        body = text[:-3]
        zone_ok = text[-3:] == "+00"
    else:
        body, zone_ok = text, True
    n = len(body)
    if (
        not zone_ok
        or n < 19
        or n > 26
        or body[4] != "-"
        or body[10] != " "
        or (n > 19 and body[19] != ".")
        or body[-1] == "C"
    ):
        raise psycopg.DataError(
            f"timestamp {text!r} is outside what an event can carry "
            "(infinite, BC or after year 9999)"
        )
    return body.replace(" ", "T", 1)


def _iso_of(body: str) -> str:
    """``iso_utc``: milliseconds, or microseconds when they are not whole milliseconds."""
    n = len(body)
    if n == 19:
        return body + ".000Z"
    if n <= 23:
        return body + "0" * (23 - n) + "Z"
    return body + "0" * (26 - n) + "Z"


def _stable_of(body: str, zone: str) -> str:
    """``stable_text`` (``isoformat``): no fraction, or six digits."""
    n = len(body)
    return body + zone if n == 19 else body + "0" * (26 - n) + zone


def timestamptz_text_iso(text: str) -> str:
    """``iso_utc`` of the timestamptz that ``text`` is."""
    return _iso_of(_iso_body(text, True))


def timestamp_text_iso(text: str) -> str:
    """``iso_utc`` of the timestamp (without time zone) that ``text`` is."""
    return _iso_of(_iso_body(text, False))


def timestamptz_text_stable(text: str) -> str:
    """``stable_text`` of the timestamptz that ``text`` is."""
    return _stable_of(_iso_body(text, True), "+00:00")


def timestamp_text_stable(text: str) -> str:
    """``stable_text`` of the timestamp (without time zone) that ``text`` is."""
    return _stable_of(_iso_body(text, False), "")


def timestamptz_text_both(text: str) -> tuple[str, str]:
    """(``stable_text``, ``iso_utc``) of the timestamptz that ``text`` is, parsed once."""
    body = _iso_body(text, True)
    return _stable_of(body, "+00:00"), _iso_of(body)


def timestamp_text_both(text: str) -> tuple[str, str]:
    """(``stable_text``, ``iso_utc``) of the timestamp that ``text`` is, parsed once."""
    body = _iso_body(text, False)
    return _stable_of(body, ""), _iso_of(body)


def numeric_text_json(text: str) -> int | float | None:
    """``json_value`` of the numeric that ``text`` is (float() of the text is float() of its
    Decimal: both round the same decimal correctly)."""
    number = float(text)
    if not math.isfinite(number):
        return None
    if number.is_integer():
        if abs(number) < 2**53:
            return int(number)
        value = Decimal(text)
        return int(value) if value == value.to_integral_value() else number
    return number


def numeric_text_stable(text: str) -> str:
    """``stable_text`` of the numeric that ``text`` is."""
    return str(Decimal(text))


_TEXT_JSON: dict[int, Callable[[str], Any]] = {
    TIMESTAMPTZ_OID: timestamptz_text_iso,
    TIMESTAMP_OID: timestamp_text_iso,
    NUMERIC_OID: numeric_text_json,
}
_TEXT_STABLE: dict[int, Callable[[str], str]] = {
    TIMESTAMPTZ_OID: timestamptz_text_stable,
    TIMESTAMP_OID: timestamp_text_stable,
    NUMERIC_OID: numeric_text_stable,
}


def _str_of_timestamptz_text(text: str) -> str:
    stable = timestamptz_text_stable(text)
    return f"{stable[:10]} {stable[11:]}"


def _str_of_timestamp_text(text: str) -> str:
    stable = timestamp_text_stable(text)
    return f"{stable[:10]} {stable[11:]}"


_TEXT_STR: dict[int, Callable[[str], str]] = {
    TIMESTAMPTZ_OID: _str_of_timestamptz_text,
    TIMESTAMP_OID: _str_of_timestamp_text,
    NUMERIC_OID: numeric_text_stable,
}


def str_converter(oid: int, *, as_text: bool) -> Callable[[Any], str]:
    """What gives ``str()`` of the value psycopg would load for a non-NULL value of a column
    of type ``oid`` (a user id, anonymous id or event name taken from any column)."""
    if as_text and oid in _TEXT_STR:
        return _TEXT_STR[oid]
    return str


def json_converter(oid: int, *, as_text: bool) -> Callable[[Any], Any] | None:
    """What turns a non-NULL value of a column of type ``oid`` into JSON (None: nothing does,
    the value is JSON already); ``as_text``: ``TEXT_LOADED`` types come as text."""
    if as_text and oid in _TEXT_JSON:
        return _TEXT_JSON[oid]
    if oid in PLAIN_OIDS:
        return None
    if oid in (TIMESTAMPTZ_OID, TIMESTAMP_OID):
        return iso_utc
    return json_value


def stable_and_iso(oid: int, *, as_text: bool) -> Callable[[str], tuple[str, str]] | None:
    """For a cursor that is also the timestamp: its stable text and ISO time in one go."""
    if not as_text:
        return None
    if oid == TIMESTAMPTZ_OID:
        return timestamptz_text_both
    if oid == TIMESTAMP_OID:
        return timestamp_text_both
    return None


def stable_text_is_equality(oid: int, *, as_text: bool) -> bool:
    """Whether equal values of a column of type ``oid`` always have the same stable text
    (not so for numerics loaded as Decimal: 1.0 == 1.00)."""
    return oid in _STR_OIDS or (as_text and oid in _TEXT_STABLE)


def stable_converter(oid: int, *, as_text: bool) -> Callable[[Any], str]:
    """What gives the ``stable_text`` of a non-NULL value of a column of type ``oid``."""
    if as_text and oid in _TEXT_STABLE:
        return _TEXT_STABLE[oid]
    if oid in _STR_OIDS:
        return str
    return stable_text
