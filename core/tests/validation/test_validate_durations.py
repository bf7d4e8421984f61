"""Durations and retention: `headwater validate`, the exported JSON Schema and the daemon's
parsers accept exactly the same strings.

One table of strings runs through every place that judges them (the validator, the config
schema editors use, the loader, the router's delivery settings, the retention policy), so
none of them can drift from the others.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

from headwater.config import (
    DURATION_PATTERN,
    RETENTION_PATTERN,
    ConfigError,
    config_from_dict,
    parse_duration,
    parse_retention,
)
from headwater.plugins import ConnectorRegistry
from headwater.router import SettingsError, delivery_settings
from headwater.validation import validate_text
from headwater.validation._schema import config_file_schema

HOUR, DAY = 3600.0, 86400.0
ENV = {"WRITE_KEY": "wk_0123"}

DURATIONS: list[tuple[str, float]] = [
    ("250ms", 0.25),
    ("90s", 90.0),
    ("1.5s", 1.5),
    ("30m", 1800.0),
    ("24h", DAY),
    ("7d", 7 * DAY),
    ("400d", 400 * DAY),
    ("2w", 14 * DAY),
    ("1h30m", 1.5 * HOUR),
    ("1h 30m", 1.5 * HOUR),
    ("1d12h", 1.5 * DAY),
    ("2m30s500ms", 150.5),
    ("0.5h", 1800.0),
    ("30 m", 1800.0),
    (" 90s ", 90.0),
    ("12", 12.0),
    ("1.25", 1.25),
    ("0s", 0.0),
]
NOT_DURATIONS = [
    "",
    " ",
    "a day",
    "1h30",
    "h",
    "-5s",
    "+5s",
    ".5s",
    "1.s",
    "1e3s",
    "1,5s",
    "5H",
    "5 sec",
    "1y",
    "1hh",
    "1m s",
    "1h-30m",
    "24 hours",
    "1 2",
]

SIZES: list[tuple[str, int]] = [
    ("50GB", 50 * 10**9),
    ("500MiB", 500 * 2**20),
    ("1kb", 1000),
    ("2 GiB", 2 * 2**30),
    ("1.5TB", 15 * 10**11),
    ("4096B", 4096),
]
NOT_RETENTION = ["forever", "1h30", "5PB", "-1d", "50G", "0d", "0GB", "0h0m", "1GB500MB"]
ZERO = {"0d", "0GB", "0h0m"}
"""Well formed, so the schema pattern passes them; the loader refuses them (above 0)."""


def _config(destination: str = "", workspace: str = "") -> str:
    return f"""
[workspace]
region = "us"
{workspace}

[sources.web]
connector = "collector"
write_keys = ["${{WRITE_KEY}}"]

[destinations.archive]
connector = "file"
region = "us"
path = "out.jsonl"
{destination}
"""


def _problems(registry: ConnectorRegistry, text: str) -> list[tuple[str, str]]:
    report = validate_text(text, registry=registry, environ=ENV)
    return [(p.code, p.path) for p in report.errors]


def _load(text: str) -> Any:
    return config_from_dict(tomllib.loads(text), environ=ENV)


def _schema_accepts(pattern: str, text: str) -> bool:
    """As JSON Schema (and so the jsonschema validator) applies a ``pattern``: unanchored."""
    return re.search(pattern, text) is not None


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_a_duration_validate_accepts_is_one_the_router_uses(
    text: str, seconds: float, registry: ConnectorRegistry
) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert _schema_accepts(DURATION_PATTERN, text)
    config_text = _config(f"max_age = {json.dumps(text)}")
    assert _problems(registry, config_text) == []
    config = _load(config_text)
    settings = delivery_settings(config.destinations["archive"], registry.get("file").spec)
    assert settings.policy.max_age == pytest.approx(seconds)


@pytest.mark.parametrize("text", NOT_DURATIONS)
def test_a_duration_validate_refuses_is_one_the_router_refuses(
    text: str, registry: ConnectorRegistry
) -> None:
    with pytest.raises(ValueError, match=re.escape("1h30m")):
        parse_duration(text)
    assert not _schema_accepts(DURATION_PATTERN, text)
    config_text = _config(f"max_age = {json.dumps(text)}")
    assert _problems(registry, config_text) == [("HW024", "destinations.archive.max_age")]
    config = _load(config_text)
    with pytest.raises(SettingsError, match=r"destinations\.archive\.max_age"):
        delivery_settings(config.destinations["archive"], registry.get("file").spec)


@pytest.mark.parametrize(
    "text",
    [t for t, _ in DURATIONS if parse_duration(t) > 0] + [t for t, _ in SIZES] + ["", "  "],
)
def test_a_retention_validate_accepts_is_one_the_daemon_loads(
    text: str, registry: ConnectorRegistry
) -> None:
    assert _schema_accepts(RETENTION_PATTERN, text)
    config_text = _config(workspace=f"retention = {json.dumps(text)}")
    assert _problems(registry, config_text) == []
    config = _load(config_text)
    policy = parse_retention(config.workspace.retention)
    expected = dict(DURATIONS).get(text), dict(SIZES).get(text)
    assert (policy.max_age, policy.max_bytes) == pytest.approx(expected)


@pytest.mark.parametrize("text", [*NOT_RETENTION, *NOT_DURATIONS[2:]])
def test_a_retention_validate_refuses_is_one_the_daemon_refuses(
    text: str, registry: ConnectorRegistry
) -> None:
    assert _schema_accepts(RETENTION_PATTERN, text) is (text in ZERO)
    with pytest.raises(ValueError, match="retention"):
        parse_retention(text)
    config_text = _config(workspace=f"retention = {json.dumps(text)}")
    [(code, path)] = _problems(registry, config_text)
    assert (code, path) == ("HW012", "workspace.retention")
    with pytest.raises(ConfigError, match="retention"):
        _load(config_text)


def test_the_exported_schema_uses_the_same_patterns(registry: ConnectorRegistry) -> None:
    schema = config_file_schema(c.spec for c in registry.connectors.values())
    workspace = schema["properties"]["workspace"]["properties"]
    assert workspace["retention"]["pattern"] == RETENTION_PATTERN
    destination = schema["$defs"]["destination"]["properties"]
    assert destination["max_age"]["pattern"] == DURATION_PATTERN
