"""Register every secret with the redactor and warn about secrets written literally."""

from __future__ import annotations

import re

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
        paths = inst.loaded.spec.secret_paths()
        for where, raw in secret_locations(paths, own):
            warn = not _named_by_user(paths, where) or _looks_like_credential(where[-1], raw)
            _one(run, (*inst.path, *where), raw, warn=warn)


CREDENTIAL = re.compile(
    r"auth|token|key|secret|pass|cookie|session|signature|credential|bearer|basic ", re.I
)
"""A key or value that reads like a credential (``Authorization``, ``X-Api-Key``,
``Bearer ...``)."""


def _named_by_user(paths: frozenset[tuple[str, ...]], where: tuple[str | int, ...]) -> bool:
    """True when the value's own key was chosen by the user, not the spec: a value of a
    map marked secret as a whole (the webhook's ``headers``), not a named secret field."""
    return not any(
        len(p) == len(where)
        and p[-1] != "*"
        and all(a in ("*", str(b)) for a, b in zip(p, where, strict=True))
        for p in paths
    )


def _looks_like_credential(key: str | int, raw: object) -> bool:
    return bool(CREDENTIAL.search(str(key))) or (
        isinstance(raw, str) and bool(CREDENTIAL.match(raw))
    )


def _one(run: Run, path: Path, raw: object, *, warn: bool = True) -> None:
    """Register the secret with the redactor (always); warn when it is written literally,
    unless ``warn`` is off: a value in a user-named map whose key and value do not read
    like a credential (``Accept = "application/json"`` among the webhook's headers)."""
    run.redactor.add_field(raw, run.environ)
    if warn and is_literal(raw):
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
