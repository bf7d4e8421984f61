"""What every command shares: the config option, loading, and output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

from ..config import Config, ConfigError, load_config
from ..log import AnyLog, LogError
from ..log import open_log as open_configured_log
from ..plugins import ConnectorRegistry, load_plugins

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: ./headwater.toml, else the embedded default).",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or programs (json).",
)


def fail(message: str, code: int = 1) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def get_config(config_path: Path | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        fail(str(exc), 2)


def get_registry() -> ConnectorRegistry:
    registry = load_plugins()
    for failure in registry.failures:
        click.secho(f"warning: {failure.error}", fg="yellow", err=True)
    return registry


def open_log(config: Config, *, readonly: bool = False) -> AnyLog:
    """The log the config names (`[log] backend`: LMDB in the data dir, or JetStream)."""
    try:
        return open_configured_log(config, readonly=readonly)
    except LogError as exc:
        fail(str(exc))


def print_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=False))
