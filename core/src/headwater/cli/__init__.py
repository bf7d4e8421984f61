"""The `headwater` command: a thin layer over the library.

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import click

from .. import __version__
from ._config import config_group
from ._connectors import connectors
from ._destinations import destinations_command
from ._dlq import dlq_group
from ._import import import_command
from ._init import init_group
from ._log import log_group
from ._reload import reload_command
from ._replay import replay_group
from ._serve import serve
from ._validate import validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="headwater")
def cli() -> None:
    """Headwater: a self-hosted event pipeline with a durable log and pluggable connectors."""


cli.add_command(connectors)
cli.add_command(log_group)
cli.add_command(import_command)
cli.add_command(init_group)
cli.add_command(validate_command)
cli.add_command(config_group)
cli.add_command(serve)
cli.add_command(destinations_command)
cli.add_command(dlq_group)
cli.add_command(replay_group)
cli.add_command(reload_command)


def main() -> None:
    cli()
