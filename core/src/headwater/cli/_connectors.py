"""`headwater connectors`: what is installed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import config_option, fail, format_option, get_registry, print_json


@click.group()
def connectors() -> None:
    """Installed connectors (found through the `headwater` entry point group)."""


@connectors.command("list")
@config_option
@format_option
def list_connectors(config_path: Path | None, fmt: str) -> None:
    """List each connector with its distribution, version, direction and regions.

    Lists what is installed, whatever the config uses (--config is accepted like on every
    command). Plugins that failed to load are reported on stderr, by name."""
    registry = get_registry()
    rows = [
        {
            "name": c.name,
            "direction": c.spec.direction,
            "regions": list(c.spec.regions),
            "distribution": c.distribution,
            "version": c.version,
            "connector_version": c.spec.version,
        }
        for c in registry
    ]
    if fmt == "json":
        print_json(rows)
        return
    if not rows:
        click.echo("no connectors installed")
        return
    header = ("NAME", "DIR", "REGIONS", "DISTRIBUTION", "VERSION")
    table = [header] + [
        (r["name"], r["direction"], ",".join(r["regions"]), r["distribution"], r["version"])
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


@connectors.command("spec")
@click.argument("name")
@config_option
def spec(name: str, config_path: Path | None) -> None:
    """Print a connector's spec as JSON."""
    registry = get_registry()
    if name not in registry:
        fail(f"no connector named {name!r}; see `headwater connectors list`")
    click.echo(json.dumps(registry.get(name).spec.to_dict(), indent=2))
