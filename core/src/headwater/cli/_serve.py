"""`headwater serve`: run the daemon."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..daemon import run, setup_logging
from ._common import config_option, fail, get_config


@click.command("serve")
@config_option
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Address to listen on (overrides [server] listen; port 0 picks a free one).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dir (overrides [workspace] data_dir).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="Log lines on stderr: JSON, text, or auto (JSON unless stderr is a terminal).",
)
def serve(
    config_path: Path | None, listen: str | None, data_dir: Path | None, log_format: str
) -> None:
    """Run the daemon: the tracking API, /healthz, /readyz, /metrics and the admin API on
    one HTTP server. SIGTERM or Ctrl-C stops it gracefully (in-flight requests finish).

    Exit codes: 0 stopped cleanly, 1 could not start (log, address), 2 bad config.
    """
    config = get_config(config_path)
    if listen is not None:
        _host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            fail(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080", 2)
        config.server.listen = listen
    if data_dir is not None:
        config.workspace.data_dir = str(data_dir.resolve())
    setup_logging(json_lines=None if log_format == "auto" else log_format == "json")
    sys.exit(run(config))
