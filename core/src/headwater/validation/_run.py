"""The state one validation shares between its checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import msgspec

from ..config import FRAMEWORK_KEYS
from ..config._model import Kind
from ..plugins import ConnectorRegistry, LoadedConnector
from ._paths import Path
from ._problems import Problems, Verdict
from ._regions import Effective


class Instance(msgspec.Struct, kw_only=True):
    """One `[sources.<id>]` / `[destinations.<id>]` table as the checks see it."""

    id: str
    kind: Kind
    section: str
    raw: dict[str, Any]
    resolved: dict[str, Any]
    connector: str | None = None
    loaded: LoadedConnector | None = None
    enabled: bool = True
    effective: Effective | None = None
    residency: Verdict = "unchecked"
    check: str | None = None

    @property
    def path(self) -> Path:
        return (self.section, self.id)

    def framework(self) -> dict[str, Any]:
        return {k: v for k, v in self.resolved.items() if k in FRAMEWORK_KEYS}

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.resolved.items() if k not in FRAMEWORK_KEYS}


class Run:
    def __init__(
        self,
        *,
        raw: dict[str, Any],
        resolved: dict[str, Any],
        registry: ConnectorRegistry,
        problems: Problems,
        environ: Mapping[str, str],
        unset_paths: set[Path],
    ) -> None:
        self.raw = raw
        self.resolved = resolved
        self.registry = registry
        self.problems = problems
        self.redactor = problems.redactor
        self.environ = environ
        self.unset_paths = unset_paths
        self.region: str | None = "us"
        """The workspace region; None when the file names an unknown one (HW050)."""
        self.residency = "strict"
        self.instances: list[Instance] = []

    @property
    def specs(self) -> list[Any]:
        return [c.spec for c in self.registry.connectors.values()]

    def depends_on_unset(self, path: Path) -> bool:
        """Whether the value at ``path`` came from (or is inside) an unset variable's value:
        its schema failures are noise, HW041 already says what to fix."""
        return any(path[: len(p)] == p for p in self.unset_paths)

    def schema_failures(
        self, schema: dict[str, Any], value: Any
    ) -> list[jsonschema.ValidationError]:
        validator = jsonschema.Draft202012Validator(schema)
        return sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
