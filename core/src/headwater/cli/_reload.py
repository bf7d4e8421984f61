"""`headwater reload` and `headwater destinations pause|resume|forget`.

`reload` asks the running daemon to re-read its config file: through the admin API when
the config has an admin token (the answer says what changed, or why the new config was
refused), else with SIGHUP to its pid (the daemon's log says how it went).

`pause` and `resume` write a flag in the log that the running daemon acts on within a
second (and that the next `headwater serve` honours): a paused destination keeps its
cursor and accumulates lag. `forget` deletes what the log keeps for a destination that is
no longer in the config: cursor, counters, parked retries and dead letters.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import click

from ..config import Config, ConfigError, load_config
from ..lifecycle import forget_destination, known_destinations, set_paused
from ..router import read_status
from ._common import config_option, fail, format_option, open_log, print_json
from ._daemon_client import admin_client, error_text, running_daemon
from ._destinations import data_dir_option, destinations_command, load, require_destination

WAIT_FOR_DAEMON = 10.0
"""How long pause/resume wait to see the daemon apply the flag (polled every second, then
a stop that flushes the cursor): a busy machine takes seconds."""


@click.command("reload")
@config_option
@format_option
@data_dir_option
def reload_command(config_path: Path | None, fmt: str, data_dir: Path | None) -> None:
    """Apply the daemon's config file without a restart: sources and destinations added,
    changed or removed. An invalid config is refused and the running one stays.

    Exit codes: 0 applied, 1 refused (or no daemon runs)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        # The daemon would refuse it for the same reason; it keeps running its config.
        click.secho("reload refused; the daemon keeps running its current config:", fg="red")
        click.echo(f"  {exc}")
        raise SystemExit(1) from None
    if data_dir is not None:
        config.workspace.data_dir = str(data_dir.resolve())
    daemon = running_daemon(config)
    if daemon is None:
        fail(f"no daemon runs for the data dir {config.data_dir} (no live pid in serve.json)")
    if not config.server.admin_token:
        os.kill(daemon.pid, signal.SIGHUP)
        click.echo(
            f"sent SIGHUP to the daemon (pid {daemon.pid}); without [server] admin_token the "
            "outcome is only in its log"
        )
        return
    with admin_client(config, daemon) as client:
        status, data = client.call("POST", "/admin/reload")
    if status not in (200, 422) or not isinstance(data, dict):
        fail(error_text(data))
    if fmt == "json":
        print_json(data)
    else:
        _print_reload(data)
    if not data.get("applied"):
        raise SystemExit(1)


def _print_reload(data: dict[str, Any]) -> None:
    if not data.get("applied"):
        click.secho("reload refused; the daemon keeps running its current config:", fg="red")
        for error in data.get("errors", []):
            click.echo(f"  {error}")
        return
    changes = data.get("changes") or {}
    lines = []
    for kind in ("sources", "destinations"):
        section = changes.get(kind) or {}
        for verb in ("added", "changed", "removed"):
            for name in section.get(verb, []):
                lines.append(f"  {kind[:-1]} {name}: {verb}")
    for setting in changes.get("applied_live", []):
        lines.append(f"  {setting}: applied")
    click.echo("config reloaded" + (":" if lines else ": nothing changed"))
    for line in lines:
        click.echo(line)
    for error in data.get("errors", []):
        click.secho(f"  error: {error}", fg="red")
    for warning in data.get("warnings", []):
        click.secho(f"  warning: {warning}", fg="yellow")


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"

    @click.command(verb)
    @click.argument("destination")
    @config_option
    @data_dir_option
    def command(destination: str, config_path: Path | None, data_dir: Path | None) -> None:
        config = load(config_path, data_dir)
        require_destination(config, destination)
        with open_log(config) as log:
            changed = set_paused(log, destination, paused)
        state = "paused" if paused else "resumed"
        if not changed:
            click.echo(f"{destination}: already {'paused' if paused else 'running'}")
            return
        daemon = running_daemon(config)
        if daemon is None:
            click.echo(f"{destination}: {state} (takes effect when `headwater serve` starts)")
            return
        if _wait_for_state(config, destination, paused):
            click.echo(f"{destination}: {state} by the daemon (pid {daemon.pid})")
        else:
            click.echo(
                f"{destination}: {state} in the log; the daemon (pid {daemon.pid}) applies it "
                "within a few seconds"
            )

    command.help = (
        "Stop delivering to DESTINATION; its cursor stays, so it accumulates lag until resumed "
        "(also across restarts)."
        if paused
        else "Deliver to DESTINATION again, from where it was paused."
    )
    return command


def _wait_for_state(config: Config, destination: str, paused: bool) -> bool:
    deadline = time.monotonic() + WAIT_FOR_DAEMON
    instance = config.destinations[destination]
    while time.monotonic() < deadline:
        with open_log(config, readonly=True) as log:
            status = read_status(log, destination, connector=instance.connector)
        if paused and status.pid is None:
            return True
        if not paused and status.pid is not None and status.state != "paused":
            return True
        time.sleep(0.2)
    return False


@click.command("forget")
@click.argument("destination")
@config_option
@data_dir_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def forget_command(
    destination: str, config_path: Path | None, data_dir: Path | None, yes: bool
) -> None:
    """Delete what the log keeps for a destination removed from the config: its cursor,
    counters, parked retries and dead letters. Connected again later, it starts afresh
    (at its `start`)."""
    config = load(config_path, data_dir)
    if destination in config.destinations:
        fail(
            f"{destination!r} is still in {config.path or 'the config'}; remove it, run "
            "`headwater reload`, then forget it"
        )
    with open_log(config) as log:
        if destination not in known_destinations(log):
            fail(f"the log keeps nothing for a destination {destination!r}")
        if not yes:
            click.confirm(
                f"delete the cursor, retries and dead letters of {destination} for good?",
                abort=True,
            )
        result = forget_destination(log, destination)
    click.echo(
        f"{destination}: forgotten (cursor {result.cursor}, {result.dead_letters} dead letters, "
        f"{result.retries} parked retries deleted)"
    )


destinations_command.add_command(_pause_command(True))
destinations_command.add_command(_pause_command(False))
destinations_command.add_command(forget_command)
