"""Would data cross the workspace's region boundary? One verdict per connector instance.

Each instance gets at most one residency problem, the first that applies of: HW053 (its
connector serves no region matching the workspace), HW052 (its effective region is
another one), HW054 (its `endpoint` override's host belongs to another region), HW055 (its
region is unknown). `[workspace] residency` makes HW052-HW054 errors (`strict`), warnings
(`warn`) or silent (`off`; the verdict still says `crosses`); HW055 is a warning unless
residency is `off`. Sources count too: with strict residency a workspace exchanges data
only with its own region, in either direction.
"""

from __future__ import annotations

from ._codes import Severity
from ._paths import format_path
from ._regions import ANY, GLOBAL, Effective, effective_region, endpoint_region, instance_regions
from ._run import Instance, Run

_BLOCKING = {"HW021", "HW022", "HW051"}


def check_residency(run: Run) -> None:
    for inst in run.instances:
        if inst.loaded is None or run.problems.codes_at(inst.path) & _BLOCKING:
            continue
        region = inst.resolved.get("region")
        if not isinstance(region, str) or run.depends_on_unset((*inst.path, "region")):
            region = None
        inst.effective = effective_region(inst.loaded, region, run.region or "")
        if run.region is None:
            if inst.effective.origin == "daemon":
                inst.effective = Effective(None, "daemon")
            continue
        _judge(run, inst, run.region)


def _severity(run: Run) -> Severity | None:
    return {"strict": "error", "warn": "warning"}.get(run.residency)  # type: ignore[return-value]


def _judge(run: Run, inst: Instance, workspace: str) -> None:
    assert inst.loaded is not None and inst.effective is not None
    spec = inst.loaded.spec
    effective = inst.effective
    severity = _severity(run)
    flows = "sends data to" if inst.kind == "destination" else "receives data from"
    relax = "or set `[workspace] residency` to `warn` or `off` if data may leave it"
    region_path = (*inst.path, "region")
    has_region = "region" in inst.raw

    if workspace not in spec.regions and ANY not in spec.regions:
        inst.residency = "crosses"
        if severity:
            run.problems.add(
                "HW053",
                (*inst.path, "connector"),
                f"`{inst.connector}` serves only {', '.join(instance_regions(spec))}, not the "
                f"workspace region `{workspace}`: `{format_path(inst.path)}` {flows} another "
                f"region; use a connector that serves `{workspace}`, {relax}",
                severity=severity,
            )
        return

    if effective.region is not None and effective.region != workspace:
        inst.residency = "crosses"
        if severity:
            where = (
                "`global` (a service not tied to a region)"
                if effective.region == GLOBAL
                else f"`{effective.region}`"
            )
            why = (
                "its `region`"
                if effective.origin == "config"
                else f"`{inst.connector}`'s default region, as no `region` is set"
            )
            run.problems.add(
                "HW052",
                region_path if has_region else inst.path,
                f"`{format_path(inst.path)}` {flows} region {where} ({why}), outside the "
                f'workspace region `{workspace}`; set `region = "{workspace}"`, {relax}',
                severity=severity,
            )
        return

    endpoint = inst.resolved.get("endpoint")
    if isinstance(endpoint, str) and endpoint:
        host_region = endpoint_region(spec, endpoint)
        if host_region is not None and host_region != workspace:
            inst.residency = "crosses"
            if severity:
                run.problems.add(
                    "HW054",
                    (*inst.path, "endpoint"),
                    f"`{format_path((*inst.path, 'endpoint'))}` points to a host of region "
                    f"`{host_region}`, outside the workspace region `{workspace}`; use the "
                    f"`{workspace}` endpoint (or remove the override), {relax}",
                    severity=severity,
                )
            return

    if effective.region is None:
        inst.residency = "unknown"
        if run.residency != "off":
            run.problems.add(
                "HW055",
                inst.path,
                f"the region of `{format_path(inst.path)}` is unknown: `{inst.connector}` can "
                f"be anywhere (its spec says `any`); set `region` to where it is (e.g. "
                f'`region = "{workspace}"`) so residency can be checked',
            )
        return
    inst.residency = "inside"
