"""`headwater import`: append events from a file."""

from __future__ import annotations

from pathlib import Path

import click

from ..importer import detect_format, import_file
from ._common import config_option, fail, get_config, open_log

MAX_SHOWN = 20


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="File format (default: from the extension; .csv is CSV, anything else JSON Lines).",
)
@click.option("--id-column", default="id", show_default=True, help="CSV column with the user id.")
@click.option("--source", default="import", show_default=True, help="Source id to record.")
@click.option("--skip-invalid", is_flag=True, help="Store the valid lines even if some are bad.")
def import_command(
    file: Path,
    config_path: Path | None,
    fmt: str | None,
    id_column: str,
    source: str,
    skip_invalid: bool,
) -> None:
    """Append events from JSON Lines (one event per line) or a CSV of people (one identify
    per row; the other columns become traits).

    The whole file is checked first: if any line is bad, every bad line is reported and
    nothing is stored, unless --skip-invalid.
    """
    config = get_config(config_path)
    kind = fmt or detect_format(file)
    if kind == "jsonl":
        size = file.stat().st_size
    else:
        with file.open("rb") as fh:
            size = max(sum(1 for _ in fh) - 1, 0)
    with (
        open_log(config) as log,
        click.progressbar(
            length=size, label=f"importing {file.name}", file=click.get_text_stream("stderr")
        ) as bar,
    ):
        report = import_file(
            log,
            file,
            source=source,
            fmt=kind,  # type: ignore[arg-type]
            id_column=id_column,
            skip_invalid=skip_invalid,
            progress=bar.update,
        )
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
