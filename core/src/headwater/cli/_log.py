"""`headwater log`: inspect the event log."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import config_option, format_option, get_config, open_log, print_json


@click.group("log")
def log_group() -> None:
    """Inspect the event log (safe while a daemon is writing)."""


@log_group.command()
@config_option
@format_option
def stats(config_path: Path | None, fmt: str) -> None:
    """Event count, sequence and time range, bytes on disk."""
    config = get_config(config_path)
    with open_log(config, readonly=True) as log:
        result = log.stats()
    if fmt == "json":
        print_json(result)
        return
    click.echo(f"log:       {log.path}")
    click.echo(f"events:    {result.events}")
    click.echo(f"sequence:  {result.first_seq} .. {result.last_seq}")
    click.echo(f"time:      {result.first_time} .. {result.last_time}")
    click.echo(f"bytes:     {result.bytes}")
    click.echo(f"rejected:  {result.rejected}")
