"""Turn a JSON Schema failure into a sentence naming the rule, the value and the fix.

jsonschema's own messages quote the offending value, which for a secret would print it;
these sentences are built from the rule instead, and the value is shown only when the key
is not secret (else ``***``).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from ._schema import PATTERN_HINTS
from ._secrets import MASK
from ._suggest import did_you_mean

_MAX_SHOWN = 80


class Failure:
    """One schema failure, described."""

    def __init__(self, error: jsonschema.ValidationError, *, secret: bool) -> None:
        self.error = error
        self.path: tuple[str | int, ...] = tuple(error.absolute_path)
        self.rule = _rule(error)
        table = isinstance(error.instance, dict)
        self.value: Any = MASK if secret else (None if table else error.instance)
        self.shown = MASK if secret else ("a table" if table else show(error.instance))
        self.sentence = _sentence(error, secret=secret)

    @property
    def keyword(self) -> str:
        return str(self.error.validator)


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _rule(error: jsonschema.ValidationError) -> str:
    if error.validator is None:
        return "false"
    if error.validator in ("required", "additionalProperties", "anyOf", "oneOf", "allOf", "not"):
        return str(error.validator)
    return f"{error.validator}: {json.dumps(error.validator_value, default=str)}"


def _sentence(error: jsonschema.ValidationError, *, secret: bool) -> str:
    kind = error.validator
    rule: Any = error.validator_value
    value = error.instance
    if kind == "type":
        expected = rule if isinstance(rule, str) else " or ".join(rule)
        return f"must be of type {expected}, not {_type_name(value)}"
    if kind in ("enum", "const"):
        allowed = rule if kind == "enum" else [rule]
        choices = ", ".join(show(v) for v in allowed)
        hint = ""
        if isinstance(value, str) and not secret:
            hint = did_you_mean(value, [v for v in allowed if isinstance(v, str)])
        return f"must be one of {choices}{hint}" if kind == "enum" else f"must be {choices}"
    simple = {
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "exclusiveMinimum": "must be greater than {}",
        "exclusiveMaximum": "must be less than {}",
        "multipleOf": "must be a multiple of {}",
        "minLength": "must be at least {} characters long",
        "maxLength": "must be at most {} characters long",
        "pattern": "must match the pattern {}",
        "format": "must be a valid {}",
        "minItems": "must have at least {} item(s)",
        "maxItems": "must have at most {} item(s)",
        "minProperties": "must have at least {} key(s)",
        "maxProperties": "must have at most {} key(s)",
    }
    if kind == "pattern" and rule in PATTERN_HINTS:
        return PATTERN_HINTS[rule]
    if isinstance(kind, str) and kind in simple:
        return simple[kind].format(rule)
    if kind == "uniqueItems":
        return "must not repeat items"
    if kind == "required":
        return f"missing required key `{missing_key(error)}`"
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        names = ", ".join(f"`{k}`" for k in extra)
        hint = did_you_mean(extra[0], known) if len(extra) == 1 else ""
        return f"unknown key {names}{hint}" if extra else "unknown keys"
    if kind in ("anyOf", "oneOf"):
        return (
            "matches none of the allowed forms"
            if kind == "anyOf"
            else ("must match exactly one of the allowed forms")
        )
    if kind is None:
        return "is not allowed here"
    return "breaks the rule" if secret else error.message


def missing_key(error: jsonschema.ValidationError) -> str:
    """The key a ``required`` failure is about."""
    required = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for key in required:
        if key not in instance and repr(key) in error.message:
            return str(key)
    missing = [k for k in required if k not in instance]
    return str(missing[0]) if missing else "?"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def failure_path(base: tuple[str | int, ...], failure: Failure) -> tuple[str | int, ...]:
    """The config path a failure is about (for ``required``, the missing key itself)."""
    path = (*base, *failure.path)
    if failure.keyword == "required":
        path = (*path, missing_key(failure.error))
    return path


def failure_message(shown_path: str, failure: Failure) -> str:
    if failure.keyword == "required":
        return f"`{shown_path}` is required; add it"
    if failure.keyword in ("additionalProperties", "None") or failure.rule == "false":
        return f"`{shown_path}`: {failure.sentence}"
    return f"`{shown_path}` {failure.sentence}; got {failure.shown}"
