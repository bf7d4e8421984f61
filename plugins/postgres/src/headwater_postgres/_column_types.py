"""Column types inferred from JSON values, how they widen, and what a value becomes in one.

Inference: booleans -> ``boolean``, integers -> ``bigint`` (``numeric`` past 64 bits),
other numbers -> ``double precision``, strings -> ``text``, arrays -> ``jsonb``. Nested
objects never reach here: they are flattened into one column per key.

Widening (``ALTER COLUMN ... TYPE``, once, when a batch needs it): an integer column that
receives a fractional number becomes ``double precision``, and one that receives an integer
past its range becomes ``bigint``/``numeric``. Nothing else widens.

A type conflict is any other mismatch: text in a number or boolean column, a number in a
boolean column, a timestamp that does not parse. The column keeps its type, the row gets
NULL there, and the value is kept in the row's ``_conflicts`` JSONB column under the column
name, so nothing is lost and no load fails. (Widening every conflicting column to text, as
some loaders do, would rewrite large tables and break every query doing arithmetic on the
column.) A ``text`` column takes any scalar as its JSON text; a ``jsonb`` column takes anything.

Values are converted to the Python type of PostgreSQL's binary COPY format for the column
(``COPY_TYPES``), which the server reads several times faster than text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

BOOLEAN: Final = "boolean"
BIGINT: Final = "bigint"
DOUBLE: Final = "double precision"
NUMERIC: Final = "numeric"
TEXT: Final = "text"
JSONB: Final = "jsonb"
TIMESTAMPTZ: Final = "timestamptz"

COPY_TYPES: Final = {
    TEXT: "text",
    "character varying": "varchar",
    "character": "bpchar",
    "smallint": "int2",
    "integer": "int4",
    BIGINT: "int8",
    "real": "float4",
    DOUBLE: "float8",
    NUMERIC: "numeric",
    BOOLEAN: "bool",
    JSONB: "jsonb",
    "json": "json",
    TIMESTAMPTZ: "timestamptz",
}
"""Column types this loader writes, with the name binary COPY knows them by. A column of any
other type (created by hand) gets no values from events: they go to ``_conflicts``."""

_INT_LIMITS = {"smallint": 1 << 15, "integer": 1 << 31, BIGINT: 1 << 63}
_INTEGER_TYPES = frozenset(_INT_LIMITS)
_FLOAT_TYPES = frozenset({DOUBLE, "real"})
_TEXT_TYPES = frozenset({TEXT, "character varying", "character"})
_PG_NAMES = {"timestamp with time zone": TIMESTAMPTZ}

_json = msgspec.json.Encoder()

Converted = tuple[list[Any], list[int], bool]
"""(stored values, indexes of conflicting values, whether the column needs widening)."""


def from_catalog(data_type: str) -> str:
    """A type as information_schema.columns.data_type spells it, in this module's names."""
    return _PG_NAMES.get(data_type, data_type)


def infer(value: Any) -> str | None:
    """The type a new column gets for ``value`` (None: NULL says nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT if -(1 << 63) <= value < (1 << 63) else NUMERIC
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return TEXT
    return JSONB


def join(first: str, second: str) -> str:
    """The type of a new column that sees values of both types in one batch."""
    if first == second:
        return first
    pair = {first, second}
    if pair == {BIGINT, DOUBLE}:
        return DOUBLE
    if pair <= {BIGINT, DOUBLE, NUMERIC}:
        return NUMERIC
    return first


def needs_widening(existing: str, value: Any) -> str | None:
    """The type ``existing`` must widen to for ``value``, or None (fits, or a conflict)."""
    if existing not in _INTEGER_TYPES or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, int) and not -_INT_LIMITS[existing] <= value < _INT_LIMITS[existing]:
        return BIGINT if -(1 << 63) <= value < (1 << 63) else NUMERIC
    return None


def accept(column_type: str, value: Any) -> Any:
    """``value`` as the column stores it, or CONFLICT (one value; see ``convert_column``)."""
    converted, conflicts, _ = convert_column(column_type, [value], settled=True)
    return CONFLICT if conflicts else converted[0]


CONFLICT: Final = object()
"""What ``accept`` returns for a value its column cannot hold."""


def convert_column(column_type: str, values: list[Any], *, settled: bool = False) -> Converted:
    """One column of a batch as stored.

    Per column rather than per value, so the type is looked at once per batch column and the
    common case (every value already of the column's type) is one pass in C. ``settled``: the
    DDL already ran, so a value that would need a wider column is a conflict instead.
    """
    if column_type in _TEXT_TYPES:
        return _text_column(values), [], False
    if column_type == JSONB or column_type == "json":
        return values, [], False
    if column_type == BOOLEAN:
        return _keep_types(values, (bool,))
    if column_type in _INTEGER_TYPES:
        return _integer_column(values, _INT_LIMITS[column_type], settled)
    if column_type in _FLOAT_TYPES:
        out, conflicts, _ = _keep_types(values, (int, float))
        return [v if v is None else float(v) for v in out], conflicts, False
    if column_type == NUMERIC:
        out, conflicts, _ = _keep_types(values, (int, float))
        return [v if v is None else Decimal(repr(v)) for v in out], conflicts, False
    if column_type == TIMESTAMPTZ:
        return _time_column(values)
    return [None] * len(values), [i for i, v in enumerate(values) if v is not None], False


_STR_OR_NONE = frozenset({str, type(None)})


def _text_column(values: list[Any]) -> list[Any]:
    # Both checks run in C: the types present, then NUL in all the strings at once.
    if set(map(type, values)) <= _STR_OR_NONE and "\x00" not in "".join(filter(None, values)):
        return values
    return [None if v is None else as_text(v) for v in values]


def _keep_types(values: list[Any], kinds: tuple[type, ...]) -> Converted:
    out = list(values)
    conflicts: list[int] = []
    for i, v in enumerate(values):
        if v is not None and type(v) not in kinds:
            conflicts.append(i)
            out[i] = None
    return out, conflicts, False


def _integer_column(values: list[Any], limit: int, settled: bool) -> Converted:
    out = list(values)
    conflicts: list[int] = []
    widen = False
    for i, v in enumerate(values):
        kind = type(v)
        if v is None or (kind is int and -limit <= v < limit):
            continue
        if (kind is int or kind is float) and not settled:
            widen = True
        else:
            conflicts.append(i)
            out[i] = None
    return out, conflicts, widen


def _time_column(values: list[Any]) -> Converted:
    # Parsed once per distinct value: a batch's receivedAt and sentAt are mostly shared.
    parsed: dict[str, datetime | None] = {}
    out: list[Any] = []
    conflicts: list[int] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if type(v) is str:
            when = parsed.get(v, _UNPARSED)
            if when is _UNPARSED:
                when = parsed[v] = parse_time(v)
        else:
            when = parse_time(v)
        if when is None:
            conflicts.append(i)
        out.append(when)
    return out, conflicts, False


_UNPARSED: Final = object()


def as_text(value: Any) -> str:
    """Any value for a text column: strings as they are, anything else as its JSON."""
    if isinstance(value, str):
        return clean_text(value)
    return clean_text(_json.encode(value).decode())


def json_dumps(value: Any) -> bytes:
    """JSON for jsonb columns; PostgreSQL refuses \\u0000 in jsonb, so it is dropped."""
    data = _json.encode(value)
    if b"\\u0000" in data:
        data = data.replace(b"\\u0000", b"")
    return data


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters; they are dropped."""
    return value.replace("\x00", "") if "\x00" in value else value


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones taken as UTC), or None."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
