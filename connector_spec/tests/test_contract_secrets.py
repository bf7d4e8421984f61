"""Secret marks anywhere in a config schema: where they are found, and what is masked."""

from __future__ import annotations

from typing import Any

import pytest

from headwater_spec import (
    Connector,
    ConnectorSpec,
    SecretRedactor,
    holds_secret,
    secret_fields,
    secret_locations,
    secret_paths,
    secret_values,
)
from headwater_spec._secrets import is_secret, redact_config
from headwater_spec.conformance._leaks import secrets_in
from headwater_spec.conformance._spec_checks import secret_problems

SECRET = {"type": "string", "secret": True}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "api_key": SECRET,
        "write_keys": {"type": "array", "items": {"type": "string"}, "secret": True},
        "headers": {"type": "object", "additionalProperties": SECRET},
        "auth": {
            "type": "object",
            "properties": {"user": {"type": "string"}, "password": SECRET},
        },
        "servers": {"type": "array", "items": {"$ref": "#/$defs/server"}},
        "tags": {"type": "object", "patternProperties": {"^x-": SECRET}},
        "url": {"type": "string"},
    },
    "$defs": {
        "server": {"type": "object", "properties": {"host": {}, "token": SECRET}},
    },
}
CONFIG: dict[str, Any] = {
    "api_key": "key-0001",
    "write_keys": ["wk-0002", "wk-0003"],
    "headers": {"Authorization": "Bearer tok-0004", "X-Trace": "trace-0005"},
    "auth": {"user": "alice", "password": "pw-0006"},
    "servers": [{"host": "a.example", "token": "st-0007"}, {"host": "b.example"}],
    "tags": {"x-sig": "sig-0008"},
    "url": "https://example.com",
}


def test_marks_are_found_at_every_depth_and_through_refs() -> None:
    assert secret_paths(SCHEMA) == {
        ("api_key",),
        ("write_keys",),
        ("headers", "*"),
        ("auth", "password"),
        ("servers", "*", "token"),
        ("tags", "*"),
    }
    assert secret_fields(SCHEMA) == {"api_key", "write_keys"}


def test_redacted_config_keeps_names_and_masks_every_secret_value() -> None:
    shown = redact_config(secret_paths(SCHEMA), CONFIG)
    assert shown == {
        "api_key": "***",
        "write_keys": "***",
        "headers": {"Authorization": "***", "X-Trace": "***"},
        "auth": {"user": "alice", "password": "***"},
        "servers": [{"host": "a.example", "token": "***"}, {"host": "b.example"}],
        "tags": {"x-sig": "***"},
        "url": "https://example.com",
    }
    assert CONFIG["headers"]["Authorization"] == "Bearer tok-0004"  # the input is untouched


def test_secret_values_and_their_locations() -> None:
    paths = secret_paths(SCHEMA)
    values = secret_values(paths, CONFIG)
    assert set(values) == {
        "key-0001",
        "wk-0002",
        "wk-0003",
        "Bearer tok-0004",
        "trace-0005",
        "pw-0006",
        "st-0007",
        "sig-0008",
    }
    where = [loc for loc, _ in secret_locations(paths, CONFIG)]
    assert ("headers", "Authorization") in where and ("servers", 0, "token") in where
    assert ("servers", 1, "token") not in where  # not set: nothing to find


@pytest.mark.parametrize(
    ("location", "secret", "holds"),
    [
        (("headers", "Authorization"), True, True),
        (("headers",), False, True),
        (("auth",), False, True),
        (("auth", "user"), False, False),
        (("servers", 3, "token"), True, True),
        (("write_keys", 1), True, True),
        (("url",), False, False),
        ((), False, True),
    ],
)
def test_is_and_holds_secret(location: tuple[str | int, ...], secret: bool, holds: bool) -> None:
    paths = secret_paths(SCHEMA)
    assert is_secret(paths, location) is secret
    assert holds_secret(paths, location) is holds


def spec_of(schema: dict[str, Any]) -> ConnectorSpec:
    return ConnectorSpec.from_dict(
        {
            "name": "nested",
            "version": "1",
            "direction": "out",
            "regions": {"any": {}},
            "config": schema,
        }
    )


class Nested(Connector):
    spec = spec_of(SCHEMA)


class _Context:
    instance_id = "n"


def test_the_default_repr_and_the_spec_redactor_mask_nested_secrets() -> None:
    text = repr(Nested(CONFIG, _Context()))  # type: ignore[arg-type]
    assert "Authorization" in text and "alice" in text
    for value in secret_values(Nested.spec.secret_paths(), CONFIG):
        assert value not in text
    redact = Nested.spec.redactor(CONFIG)
    assert isinstance(redact, SecretRedactor)
    assert redact("refused: Bearer tok-0004 for alice") == "refused: *** for alice"


def test_the_conformance_suite_looks_for_nested_secrets_by_their_path() -> None:
    found, problems = secrets_in(CONFIG, Nested.spec)
    fields = {s.field for s in found}
    assert {"headers.Authorization", "auth.password", "servers.0.token"} <= fields
    assert problems == []
    assert secret_problems(Nested, Nested.spec) == []


def test_a_marked_number_is_a_spec_problem_wherever_it_is() -> None:
    schema = {
        "type": "object",
        "properties": {
            "auth": {"type": "object", "properties": {"pin": {"type": "integer", "secret": True}}}
        },
    }
    [problem] = secret_problems(Nested, spec_of(schema))
    assert "secret field `auth.pin` has type 'integer'" in problem
