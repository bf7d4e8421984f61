"""Register every secret with the redactor and warn about secrets written literally."""

from __future__ import annotations

from headwater_spec import secret_locations

from ..config import FRAMEWORK_KEYS
from ._paths import Path, format_path
from ._run import Run
from ._schema import FRAMEWORK_SECRETS
from ._secrets import is_literal


def check_secrets(run: Run) -> None:
    for path in sorted(FRAMEWORK_SECRETS):
        section = run.raw.get(path[0])
        if isinstance(section, dict) and path[1] in section:
            _one(run, path, section[path[1]])
    for inst in run.instances:
        if inst.loaded is None:
            continue
        own = {k: v for k, v in inst.raw.items() if k not in FRAMEWORK_KEYS}
        for where, raw in secret_locations(inst.loaded.spec.secret_paths(), own):
            _one(run, (*inst.path, *where), raw)


def _one(run: Run, path: Path, raw: object) -> None:
    run.redactor.add_field(raw, run.environ)
    if is_literal(raw):
        variable = "_".join(str(p).upper().replace("-", "_") for p in path[-2:])
        example = f'"${{{variable}}}"'
        if isinstance(raw, list):
            example = f"[{example}]"
        run.problems.add(
            "HW040",
            path,
            f"`{format_path(path)}` is a secret written into the file; reference an "
            f"environment variable instead, e.g. `{path[-1]} = {example}`",
        )
