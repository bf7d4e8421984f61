"""Top-level sections and the framework tables `[workspace]`, `[server]` and `[log]`."""

from __future__ import annotations

from typing import Any

import msgspec

from ..config._load import rule_key
from ._paths import format_path
from ._regions import workspace_regions
from ._rules import Failure, failure_message, failure_path
from ._run import Run
from ._schema import FRAMEWORK_SECRETS, INSTANCE_SECTIONS, SECTIONS, section_schema
from ._suggest import did_you_mean

ALL_SECTIONS = (*SECTIONS, *INSTANCE_SECTIONS)


def check_sections(run: Run, region_override: str | None) -> None:
    """Unknown sections, unknown keys and bad values; sets the workspace region and policy."""
    for name in run.raw:
        if name not in ALL_SECTIONS:
            run.problems.add(
                "HW010",
                (name,),
                f"unknown section `{name}`{did_you_mean(name, ALL_SECTIONS)}; the sections "
                f"are {', '.join(ALL_SECTIONS)}",
            )
    for name in (*SECTIONS, *INSTANCE_SECTIONS):
        if name in run.raw and not isinstance(run.raw[name], dict):
            run.problems.add("HW013", (name,), f"`{name}` must be a table (`[{name}]`)")
    for name in SECTIONS:
        table = run.resolved.get(name)
        if isinstance(table, dict):
            _check_table(run, name, table)

    workspace = run.resolved.get("workspace")
    workspace = workspace if isinstance(workspace, dict) else {}
    residency = workspace.get("residency")
    run.residency = residency if residency in ("strict", "warn", "off") else "strict"
    configured = workspace.get("region", "us")
    if region_override is not None:
        run.region = region_override
    elif configured in workspace_regions(run.specs):
        run.region = configured
    else:
        run.region = None


def _check_table(run: Run, name: str, table: dict[str, Any]) -> None:
    schema = section_schema(name, run.specs)
    known = list(schema["properties"])
    for key in table:
        if key not in known:
            run.problems.add(
                "HW011",
                (name, key),
                f"unknown key `{key}` in [{name}]{did_you_mean(key, known)}; the keys are "
                f"{', '.join(known)}",
            )
    failures = run.schema_failures(schema, table)
    if not failures:
        _check_struct(run, name, table)
    for error in failures:
        secret = (name, *list(error.absolute_path)[:1]) in FRAMEWORK_SECRETS
        failure = Failure(error, secret=secret)
        if failure.keyword == "additionalProperties" and not failure.path:
            continue
        path = failure_path((name,), failure)
        if run.depends_on_unset(path):
            continue
        if path == ("workspace", "region") and failure.keyword == "enum":
            regions = workspace_regions(run.specs)
            run.problems.add(
                "HW050",
                path,
                f"unknown workspace region {failure.shown}"
                f"{did_you_mean(str(error.instance), regions)}; the regions are "
                f"{', '.join(regions)} (`us`, `eu` and those the installed connectors serve)",
            )
            continue
        run.problems.add(
            "HW012",
            path,
            failure_message(format_path(path), failure),
            rule=failure.rule,
            value=failure.value,
        )


def _check_struct(run: Run, name: str, table: dict[str, Any]) -> None:
    """Build the section's Struct as the loader does, for the rules only its code knows
    (e.g. `[log]` JetStream checks); the schema found nothing, so this is what remains."""
    if any(run.depends_on_unset((name, key)) for key in table):
        return
    try:
        msgspec.convert(table, SECTIONS[name])
    except msgspec.ValidationError as exc:
        text, _, where = str(exc).rpartition(" - at `")
        field = where.rstrip("`").removeprefix("$").lstrip(".") if text else ""
        key = rule_key(text or str(exc))
        if not field and key in table:
            field = str(key)
        path = (name, field) if field else (name,)
        run.problems.add("HW012", path, f"[{name}]: {text or exc}")
