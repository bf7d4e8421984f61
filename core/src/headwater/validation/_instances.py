"""Each `[sources.<id>]` and `[destinations.<id>]`: connector, direction, keys, values."""

from __future__ import annotations

import re
from typing import Any

from headwater_spec import holds_secret

from ..config import FRAMEWORK_KEYS
from ._known import KNOWN_DISTRIBUTIONS
from ._paths import format_path, json_pointer
from ._regions import instance_regions
from ._rules import Failure, failure_message, failure_path
from ._run import Instance, Run
from ._schema import DESTINATION_ONLY, INSTANCE_SECTIONS, framework_properties
from ._suggest import closest, did_you_mean


def check_instances(run: Run) -> None:
    for section, kind in INSTANCE_SECTIONS.items():
        table, resolved = run.raw.get(section), run.resolved.get(section)
        if not isinstance(table, dict) or not isinstance(resolved, dict):
            continue
        for instance_id, body in table.items():
            path = (section, instance_id)
            if not isinstance(body, dict):
                run.problems.add(
                    "HW013",
                    path,
                    f"`{format_path(path)}` must be a table: write it as "
                    f"[{format_path(path)}] with `connector = ...` under it",
                )
                continue
            inst = Instance(
                id=instance_id, kind=kind, section=section, raw=body, resolved=resolved[instance_id]
            )
            run.instances.append(inst)
            _check_instance(run, inst)


def _check_instance(run: Run, inst: Instance) -> None:
    enabled = inst.resolved.get("enabled", True)
    inst.enabled = enabled if isinstance(enabled, bool) else True
    connector = inst.resolved.get("connector")
    if "connector" not in inst.raw:
        run.problems.add(
            "HW020",
            inst.path,
            f"`{format_path(inst.path)}` has no `connector`; name the connector to use "
            "(`headwater connectors list` shows the installed ones)",
        )
    elif isinstance(connector, str) and connector:
        inst.connector = connector
        inst.loaded = run.registry.connectors.get(connector)
        if inst.loaded is None:
            run.problems.add("HW021", (*inst.path, "connector"), _not_installed(run, connector))
        else:
            _check_direction(run, inst)
    _check_keys(run, inst)
    _check_framework_values(run, inst)
    _check_options(run, inst)


def _not_installed(run: Run, name: str) -> str:
    installed = sorted(run.registry.connectors)
    shown = ", ".join(installed) if installed else "none"
    distribution = KNOWN_DISTRIBUTIONS.get(name)
    if distribution:
        failed = next(
            (f for f in run.registry.failures if _norm(f.distribution) == distribution), None
        )
        if failed is not None:
            return f"connector `{name}` is installed but failed to load: {failed.error}"
        return f"connector `{name}` is not installed; install it with `pip install {distribution}`"
    guess = closest(name, [*installed, *KNOWN_DISTRIBUTIONS])
    hint = ""
    if guess in run.registry.connectors:
        hint = f" (did you mean `{guess}`?)"
    elif guess:
        hint = f" (did you mean `{guess}`, from `pip install {KNOWN_DISTRIBUTIONS[guess]}`?)"
    return f"connector `{name}` is not installed{hint} (installed: {shown})"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_direction(run: Run, inst: Instance) -> None:
    assert inst.loaded is not None
    want = "in" if inst.kind == "source" else "out"
    have = inst.loaded.spec.direction
    if have == want:
        return
    other = "destinations" if inst.kind == "source" else "sources"
    role = "destination" if have == "out" else "source"
    run.problems.add(
        "HW022",
        (*inst.path, "connector"),
        f"`{inst.connector}` is a {role} connector (direction `{have}`) but is used under "
        f"[{inst.section}], which needs direction `{want}`; move it to [{other}.{inst.id}]",
    )


def _check_keys(run: Run, inst: Instance) -> None:
    if inst.kind == "source":
        for key in inst.raw:
            if key in DESTINATION_ONLY:
                run.problems.add(
                    "HW025",
                    (*inst.path, key),
                    f"`{key}` applies to destinations only; remove it from "
                    f"[{format_path(inst.path)}]",
                )
    if inst.loaded is None:
        return
    schema = inst.loaded.spec.config
    if schema.get("additionalProperties") is not False or schema.get("patternProperties"):
        return
    own = list(schema.get("properties", {}))
    allowed = [*own, *(k for k in FRAMEWORK_KEYS if not _dest_only_on_source(inst, k))]
    for key in inst.raw:
        if key in own or key in FRAMEWORK_KEYS:
            continue
        run.problems.add(
            "HW023",
            (*inst.path, key),
            f"unknown key `{key}` in [{format_path(inst.path)}]{did_you_mean(key, allowed)}; "
            f"`{inst.connector}` takes {_listing(own)} beside the framework keys",
        )


def _dest_only_on_source(inst: Instance, key: str) -> bool:
    return inst.kind == "source" and key in DESTINATION_ONLY


def _listing(keys: list[str]) -> str:
    return ", ".join(f"`{k}`" for k in keys) if keys else "no keys of its own"


def _check_framework_values(run: Run, inst: Instance) -> None:
    spec = inst.loaded.spec if inst.loaded else None
    props = framework_properties(inst.kind, spec)
    values = {k: v for k, v in inst.framework().items() if props.get(k) is not False}
    for error in run.schema_failures({"type": "object", "properties": props}, values):
        failure = Failure(error, secret=False)
        path = failure_path(inst.path, failure)
        if run.depends_on_unset(path):
            continue
        if path[2:] == ("region",) and failure.keyword == "enum" and spec is not None:
            served = instance_regions(spec)
            run.problems.add(
                "HW051",
                path,
                f"`{inst.connector}` cannot serve region {failure.shown}"
                f"{did_you_mean(str(error.instance), served)}; it serves "
                f"{', '.join(served)}; set `region` to one of them",
            )
            continue
        run.problems.add(
            "HW024",
            path,
            failure_message(format_path(path), failure),
            rule=failure.rule,
            value=failure.value,
        )


def _check_options(run: Run, inst: Instance) -> None:
    if inst.loaded is None:
        return
    spec = inst.loaded.spec
    secrets = spec.secret_paths()
    options: dict[str, Any] = inst.options()
    for error in run.schema_failures(spec.config, options):
        # a table is never quoted (only its keys are), whatever it holds
        table = isinstance(error.instance, dict)
        secret = not table and holds_secret(secrets, list(error.absolute_path))
        failure = Failure(error, secret=secret)
        if failure.keyword == "additionalProperties" and not failure.path:
            continue
        path = failure_path(inst.path, failure)
        if run.depends_on_unset(path):
            continue
        if failure.keyword == "required":
            run.problems.add(
                "HW031",
                path,
                f"`{format_path(path)}` is required by `{inst.connector}`; add it",
                pointer=json_pointer(path[2:]),
                rule="required",
            )
            continue
        pointer = json_pointer(failure.path)
        run.problems.add(
            "HW030",
            path,
            f"{failure_message(format_path(path), failure)} "
            f"(rule `{failure.rule}` at {pointer} of `{inst.connector}`'s config schema)",
            pointer=pointer,
            rule=failure.rule,
            value=failure.value,
        )
