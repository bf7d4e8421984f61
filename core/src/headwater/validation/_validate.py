"""`validate_file` / `validate_text`: every check, all problems reported, never just the first."""

from __future__ import annotations

import asyncio
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..plugins import ConnectorRegistry
from ._connectivity import run_checks
from ._environment import resolve
from ._instances import check_instances
from ._paths import format_path
from ._problems import ConnectorRow, Problems, Report
from ._regions import workspace_regions
from ._residency import check_residency
from ._run import Instance, Run
from ._secret_checks import check_secrets
from ._secrets import Redactor
from ._sections import check_sections
from ._suggest import did_you_mean
from ._toml_lines import LineMap
from ._topology import check_topology

DEFAULT_CHECK_TIMEOUT = 10.0


def validate_file(
    path: str | Path,
    *,
    registry: ConnectorRegistry,
    region: str | None = None,
    allow_missing_env: bool = False,
    check: bool = False,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Validate a config file; an unreadable file is a report with HW001 (exit code 2)."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        problems = Problems(file=file, lines=LineMap(), redactor=Redactor())
        reason = exc.strerror or type(exc).__name__
        problems.add("HW001", (), f"cannot read {file}: {reason}; pass the path of a config file")
        return problems.report(connectors=[], file=file, region=region)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems = Problems(file=file, lines=LineMap(), redactor=Redactor())
        line = data[: exc.start].count(b"\n") + 1
        problems.add("HW002", (), f"not valid TOML: the file is not UTF-8 (line {line})")
        problems.items[-1].line = line
        return problems.report(connectors=[], file=file, region=region)
    return validate_text(
        text,
        file=file,
        registry=registry,
        region=region,
        allow_missing_env=allow_missing_env,
        check=check,
        check_timeout=check_timeout,
        environ=environ,
    )


def validate_text(
    text: str,
    *,
    file: str | None = None,
    registry: ConnectorRegistry,
    region: str | None = None,
    allow_missing_env: bool = False,
    check: bool = False,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Report:
    """Validate config text against the connectors in ``registry``.

    ``environ`` (default: the process environment) resolves `${ENV}` references;
    ``region`` checks the config as if its workspace were in that region.
    """
    env = os.environ if environ is None else environ
    redactor = Redactor()
    specs = [c.spec for c in registry.connectors.values()]
    if region is not None and region not in workspace_regions(specs):
        known = workspace_regions(specs)
        problems = Problems(file=file, lines=LineMap(), redactor=redactor)
        problems.add(
            "HW003",
            (),
            f"--region {region!r} is not a known region{did_you_mean(region, known)}; use one "
            f"of {', '.join(known)}",
        )
        return problems.report(connectors=[], file=file, region=region)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems = Problems(file=file, lines=LineMap(), redactor=redactor)
        problems.add("HW002", (), f"not valid TOML: {exc}")
        found = re.search(r"line (\d+)", str(exc))
        problems.items[-1].line = int(found.group(1)) if found else None
        return problems.report(connectors=[], file=file, region=region)

    problems = Problems(file=file, lines=LineMap.scan(text), redactor=redactor)
    resolved, unset = resolve(raw, env)
    run = Run(
        raw=raw,
        resolved=resolved,
        registry=registry,
        problems=problems,
        environ=env,
        unset_paths={u.path for u in unset},
    )
    for missing in unset:
        problems.add(
            "HW041",
            missing.path,
            f"`{format_path(missing.path)}` references ${{{missing.variable}}}, which is not set; "
            f"export it, or give a default with ${{{missing.variable}:-value}}",
            severity="warning" if allow_missing_env else "error",
        )
    check_sections(run, region)
    check_instances(run)
    check_secrets(run)
    check_residency(run)
    check_topology(run)
    if check:
        asyncio.run(run_checks(run, timeout=check_timeout, data_dir=_data_dir(run, file)))
    return problems.report(
        connectors=[_row(inst) for inst in run.instances],
        file=file,
        region=run.region,
        residency=run.residency,
    )


def _data_dir(run: Run, file: str | None) -> Path:
    workspace = run.resolved.get("workspace")
    value: Any = workspace.get("data_dir") if isinstance(workspace, dict) else None
    path = Path(value if isinstance(value, str) and value else "./headwater-data").expanduser()
    if path.is_absolute() or file is None:
        return path
    return Path(file).parent / path


def _row(inst: Instance) -> ConnectorRow:
    effective = inst.effective
    return ConnectorRow(
        id=inst.id,
        kind=inst.kind,
        connector=inst.connector,
        direction=inst.loaded.spec.direction if inst.loaded else None,
        region=effective.region if effective else None,
        region_from=effective.origin if effective else "unknown",
        residency=inst.residency,
        enabled=inst.enabled,
        check=inst.check,
    )
