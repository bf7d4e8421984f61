"""`${ENV_VAR}` references in config values (secrets stay out of the file)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingEnvError(LookupError):
    def __init__(self, path: str, variable: str) -> None:
        self.path = path
        self.variable = variable
        super().__init__(
            f"`{path}` references ${{{variable}}}, which is not set; export it or give a "
            f"default with ${{{variable}:-value}}"
        )


def env_refs(value: Any) -> list[str]:
    """Names of the variables ``value`` references (``${A}`` and ``${A:-x}``)."""
    if not isinstance(value, str):
        return []
    return [m.group(1) for m in _REF.finditer(value) if m.group(1)]


def expand(
    value: Any,
    path: str,
    environ: Mapping[str, str] | None = None,
    missing: list[MissingEnvError] | None = None,
) -> Any:
    """Resolve references in strings, recursively; ``$$`` is a literal ``$``.

    An unset variable without default raises MissingEnvError, or is collected into
    ``missing`` (and left empty) when a list is given.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand(v, f"{path}.{k}", env, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{path}[{i}]", env, missing) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "$"
        if name in env:
            return env[name]
        if default is not None:
            return default
        error = MissingEnvError(path, name)
        if missing is None:
            raise error
        missing.append(error)
        return ""

    return _REF.sub(replace, value)
