"""`headwater config`: the config file's JSON Schema, for editors."""

from __future__ import annotations

import json

import click

from ..validation import config_file_schema
from ._common import get_registry


@click.group("config")
def config_group() -> None:
    """The config file (`headwater.toml`)."""


@config_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of the whole config file, built from the installed connectors.

    Point your editor at it (e.g. Taplo / Even Better TOML: `#:schema ./headwater.schema.json`
    on the first line of headwater.toml).
    """
    specs = [c.spec for c in get_registry()]
    click.echo(json.dumps(config_file_schema(specs), indent=2))
