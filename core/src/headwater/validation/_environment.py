"""Resolve `${ENV}` references across the whole file, noting each unset variable's key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import MissingEnvError, expand
from ._paths import Path


class Unset(msgspec.Struct, frozen=True):
    path: Path
    variable: str


def resolve(value: Any, environ: Mapping[str, str], path: Path = ()) -> tuple[Any, list[Unset]]:
    """The value with references resolved (unset ones empty) and the unset references."""
    unset: list[Unset] = []
    return _walk(value, environ, path, unset), unset


def _walk(value: Any, environ: Mapping[str, str], path: Path, unset: list[Unset]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, environ, (*path, k), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, environ, (*path, i), unset) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    missing: list[MissingEnvError] = []
    resolved = expand(value, "", environ, missing)
    unset.extend(Unset(path, m.variable) for m in missing)
    return resolved
