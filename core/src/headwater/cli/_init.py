"""`headwater init connector`: scaffold a connector package (see ``headwater.scaffold``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..scaffold import ScaffoldError, known_regions, scaffold
from ._common import fail


@click.group("init")
def init_group() -> None:
    """Start something new from a template."""


@init_group.command("connector")
@click.argument("name")
@click.option(
    "--direction",
    type=click.Choice(["in", "out"]),
    required=True,
    help="`in` for a source (events enter Headwater), `out` for a destination.",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    type=click.Choice(known_regions()),
    help="A region the service serves (repeat for several). Default: global.",
)
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the package (default: ./headwater-NAME).",
)
def init_connector(
    name: str, direction: str, regions: tuple[str, ...], target: Path | None
) -> None:
    """Scaffold the connector package `headwater-NAME`, with tests that already pass."""
    try:
        template, written = scaffold(name, direction, regions, target)
    except ScaffoldError as exc:
        fail(str(exc), 2)
    folder = target if target is not None else Path(template.dist)
    click.echo(f"created {template.dist} ({template.class_name}) in {folder}:")
    for path in written:
        click.echo(f"  {path.relative_to(folder)}")
    click.echo(
        "\nnext:\n"
        f"  cd {folder}\n"
        "  uv venv && uv pip install -e '.[test]'\n"
        "  uv run pytest          # the conformance suite passes as generated\n"
        f"then edit src/{template.package}/spec.json (regions, config) and __init__.py."
    )
