"""`headwater validate`: check a config before it ships (the library does the work)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..config import DEFAULT_FILE
from ..validation import DEFAULT_CHECK_TIMEOUT, render_text, validate_file
from ._common import format_option, get_registry


@click.command("validate")
@click.argument("config_file", required=False, type=click.Path(path_type=Path), metavar="[CONFIG]")
@click.option(
    "--config",
    "-c",
    "config_option",
    type=click.Path(path_type=Path),
    default=None,
    help="Same as the CONFIG argument.",
)
@format_option
@click.option("--check", is_flag=True, help="Also call each connector's connectivity check.")
@click.option(
    "--check-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CHECK_TIMEOUT,
    show_default=True,
    help="Seconds each connectivity check may take.",
)
@click.option("--region", default=None, help="Check as if the workspace were in this region.")
@click.option(
    "--allow-missing-env",
    is_flag=True,
    help="Report unset ${ENV} references as warnings, not errors (e.g. in CI).",
)
def validate_command(
    config_file: Path | None,
    config_option: Path | None,
    fmt: str,
    check: bool,
    check_timeout: float,
    region: str | None,
    allow_missing_env: bool,
) -> None:
    """Check CONFIG (default: ./headwater.toml): keys, connector options, secrets, regions
    and data residency, topology; offline unless --check.

    Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error or unreadable file.
    Problem codes are listed in docs/validate.md.
    """
    if config_file and config_option and config_file != config_option:
        raise click.UsageError("give the config either as CONFIG or with --config, not both")
    path = config_file or config_option or Path(DEFAULT_FILE)
    report = validate_file(
        path,
        registry=get_registry(),
        region=region,
        allow_missing_env=allow_missing_env,
        check=check,
        check_timeout=check_timeout,
    )
    if fmt == "json":
        click.echo(json.dumps(report.to_builtins(), indent=2))
    else:
        click.echo(render_text(report))
    sys.exit(report.exit_code)
