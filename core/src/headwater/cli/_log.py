"""`headwater log`: inspect the event log."""

from __future__ import annotations

from pathlib import Path

import click

from ..log import JetStreamLog
from ._common import config_option, format_option, get_config, open_log, print_json


@click.group("log")
def log_group() -> None:
    """Inspect the event log (safe while a daemon is writing)."""


@log_group.command()
@config_option
@format_option
def stats(config_path: Path | None, fmt: str) -> None:
    """Event count, sequence and time range, bytes on disk (LMDB: the data file; JetStream:
    the streams and the state bucket, per replica)."""
    config = get_config(config_path)
    with open_log(config, readonly=True) as log:
        result = log.stats()
    if fmt == "json":
        print_json(result)
        return
    where = log.location if isinstance(log, JetStreamLog) else str(log.path)
    click.echo(f"log:       {where}")
    click.echo(f"events:    {result.events}")
    click.echo(f"sequence:  {result.first_seq} .. {result.last_seq}")
    click.echo(f"time:      {result.first_time} .. {result.last_time}")
    click.echo(f"bytes:     {result.bytes}")
    click.echo(f"rejected:  {result.rejected}")
