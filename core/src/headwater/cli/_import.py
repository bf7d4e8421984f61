"""`headwater import`: append events from a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_args

import click

from ..importer import Format, ImportAborted, count_units, detect_format, import_file
from ..log import LogError
from ._common import config_option, fail, get_config, open_log

MAX_SHOWN = 20


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(get_args(Format)),
    default=None,
    help="File format (default: from the extension; .csv is CSV, anything else JSON Lines).",
)
@click.option("--id-column", default="id", show_default=True, help="CSV column with the user id.")
@click.option("--source", default="import", show_default=True, help="Source id to record.")
@click.option("--skip-invalid", is_flag=True, help="Store the valid lines even if some are bad.")
def import_command(
    file: Path,
    config_path: Path | None,
    fmt: Format | None,
    id_column: str,
    source: str,
    skip_invalid: bool,
) -> None:
    """Append events from JSON Lines (one event per line) or a CSV of people (one identify
    per row; the other columns become traits).

    The whole file is checked first: if any line is bad, every bad line is reported with its
    number and nothing is stored, unless --skip-invalid. Exit status: 0 all imported,
    1 bad lines (or a log error), 2 a config error.
    """
    config = get_config(config_path)
    kind: Format = fmt or detect_format(file)
    units = count_units(file, kind)
    log = open_log(config)
    try:
        with click.progressbar(
            length=2 * units,  # a check pass, then a store pass
            label=f"importing {file.name}",
            file=sys.stderr,
        ) as bar:
            report = import_file(
                log,
                file,
                source=source,
                fmt=kind,
                id_column=id_column,
                skip_invalid=skip_invalid,
                progress=bar.update,
            )
    except ImportAborted as exc:
        fail(str(exc))
    except (LogError, OSError) as exc:
        fail(f"import of {file} failed: {exc}")
    finally:
        log.close()
    for bad in report.bad[:MAX_SHOWN]:
        click.secho(f"{file}:{bad.line}: {bad.message}", fg="red", err=True)
    if len(report.bad) > MAX_SHOWN:
        click.secho(f"... and {len(report.bad) - MAX_SHOWN} more bad lines", fg="red", err=True)
    if report.bad and not skip_invalid:
        fail(
            f"{len(report.bad)} bad line(s) in {file}; nothing was imported. Fix them, or "
            "pass --skip-invalid to import the valid lines"
        )
    click.echo(
        f"imported {report.imported} events from {file}"
        + (f" (seq {report.first_seq}..{report.last_seq})" if report.imported else "")
        + (f"; skipped {len(report.bad)} bad line(s)" if report.bad else "")
    )
    if report.bad:
        raise SystemExit(1)
