"""`headwater destinations`: each destination's state, lag and counts, read from the log.

Safe while a daemon runs (LMDB readers never block the writer) and useful when none does:
the counters and the cursor are durable, and the state says `stopped` when the process that
last delivered is gone.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config
from ..log import LogError
from ..log import open_log as open_configured_log
from ..router import DestinationStatus, read_status
from ._common import config_option, fail, format_option, get_config, print_json

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dir (overrides [workspace] data_dir), as given to `headwater serve`.",
)


def load(config_path: Path | None, data_dir: Path | None) -> Config:
    config = get_config(config_path)
    if data_dir is not None:
        config.workspace.data_dir = str(data_dir.resolve())
    return config


def require_destination(config: Config, destination: str) -> None:
    if destination not in config.destinations:
        known = ", ".join(sorted(config.destinations)) or "none"
        where = config.path or "the embedded default config"
        fail(f"no destination {destination!r} in {where} (configured: {known})")


def statuses(config: Config) -> list[DestinationStatus]:
    instances = list(config.destinations.values())
    try:
        log = open_configured_log(config, readonly=True) if instances else None
    except LogError:
        log = None  # no log yet: nothing was ever delivered
    if log is None:
        return [_never_started(i.id, i.connector, i.enabled) for i in instances]
    with log:
        return [read_status(log, i.id, connector=i.connector, enabled=i.enabled) for i in instances]


def _never_started(destination: str, connector: str, enabled: bool) -> DestinationStatus:
    return DestinationStatus(
        id=destination,
        connector=connector,
        enabled=enabled,
        state="stopped" if enabled else "disabled",
        cursor=None,
        last_seq=0,
        lag_events=0,
        lag_seconds=0.0,
        pending_retries=0,
        dead_letters=0,
        delivered=0,
        retried=0,
        dead_lettered=0,
        filtered=0,
        redriven=0,
    )


@click.group("destinations", invoke_without_command=True)
@config_option
@format_option
@data_dir_option
@click.pass_context
def destinations_command(
    ctx: click.Context, config_path: Path | None, fmt: str, data_dir: Path | None
) -> None:
    """State, lag (events and seconds) and delivered / retried / dead-lettered counts of
    every configured destination; subcommands pause, resume and forget one."""
    if ctx.invoked_subcommand is not None:
        return
    config = load(config_path, data_dir)
    try:
        rows = statuses(config)
    except LogError as exc:
        fail(str(exc))
    if fmt == "json":
        print_json({"destinations": rows})
        return
    if not rows:
        click.echo("no destinations configured")
        _print_kept(config)
        return
    header = ("DESTINATION", "CONNECTOR", "STATE", "LAG", "LAG(s)", "DELIVERED", "RETRIED",
              "DEAD", "PENDING", "DLQ")  # fmt: skip
    table = [header] + [
        (
            s.id,
            s.connector,
            s.state,
            str(s.lag_events),
            f"{s.lag_seconds:.1f}",
            str(s.delivered),
            str(s.retried),
            str(s.dead_lettered),
            str(s.pending_retries),
            str(s.dead_letters),
        )
        for s in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for s in rows:
        if s.error or s.last_error:
            click.echo(f"{s.id}: last error: {s.error or s.last_error} ({s.last_error_at or ''})")
        if s.last_failure:
            again = f"; restarts at {s.restart_at}" if s.restart_at else ""
            click.echo(
                f"{s.id}: a delivery task failed {s.task_failures} time(s), last at "
                f"{s.last_failure_at}: {s.last_failure}{again}"
            )
    _print_kept(config)


def _print_kept(config: Config) -> None:
    for name in kept_but_removed(config):
        click.echo(
            f"{name}: no longer configured; its cursor, retries and dead letters are kept "
            f"(`headwater destinations forget {name}` deletes them)"
        )


def kept_but_removed(config: Config) -> list[str]:
    """Destinations the log still holds state for that the config no longer names."""
    from ..lifecycle import known_destinations

    try:
        log = open_configured_log(config, readonly=True)
    except LogError:
        return []
    with log:
        return [d for d in known_destinations(log) if d not in config.destinations]
