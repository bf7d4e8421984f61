"""What validation reports: problems, a row per connector, and the report with its exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ._codes import CODES, Severity
from ._paths import Path, format_path
from ._secrets import Redactor
from ._toml_lines import LineMap

Verdict = Literal["inside", "crosses", "unknown", "unchecked"]


class Problem(msgspec.Struct, kw_only=True):
    """One finding. ``path`` is the dotted config key; ``line`` the file line when known.

    ``pointer``, ``rule`` and ``value`` are set for connector options checked against the
    connector's JSON Schema (``value`` is ``"***"`` for secrets).
    """

    code: str
    severity: Severity
    path: str
    message: str
    line: int | None = None
    file: str | None = None
    pointer: str | None = None
    rule: str | None = None
    value: Any = None


class ConnectorRow(msgspec.Struct, kw_only=True):
    """A connector instance as the report's table shows it."""

    id: str
    kind: Literal["source", "destination"]
    connector: str | None
    direction: str | None
    region: str | None
    region_from: Literal["config", "default", "daemon", "unknown"]
    residency: Verdict
    enabled: bool = True
    check: str | None = None
    """None without ``--check``; else ``ok``, ``failed``, ``timeout`` or ``skipped``."""


class Report(msgspec.Struct, kw_only=True):
    valid: bool
    errors: list[Problem]
    warnings: list[Problem]
    connectors: list[ConnectorRow]
    file: str | None = None
    region: str | None = None
    residency: str | None = None

    @property
    def exit_code(self) -> int:
        """0 valid (warnings allowed), 1 invalid, 2 usage error or unreadable file."""
        if any(CODES[p.code].usage for p in self.errors):
            return 2
        return 1 if self.errors else 0

    def to_builtins(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class Problems:
    """Collects problems; fills in line numbers and scrubs secrets from every message."""

    def __init__(self, *, file: str | None, lines: LineMap, redactor: Redactor) -> None:
        self.file = file
        self.lines = lines
        self.redactor = redactor
        self.items: list[Problem] = []

    def add(
        self,
        code: str,
        path: Path,
        message: str,
        *,
        severity: Severity | None = None,
        line_path: Path | None = None,
        pointer: str | None = None,
        rule: str | None = None,
        value: Any = None,
    ) -> None:
        self.items.append(
            Problem(
                code=code,
                severity=severity or CODES[code].severity,
                path=format_path(path),
                message=message,
                line=self.lines.line_of(line_path if line_path is not None else path),
                file=self.file,
                pointer=pointer,
                rule=rule,
                value=value,
            )
        )

    def codes_at(self, prefix: Path) -> set[str]:
        """Codes of error problems under ``prefix`` (an instance), to skip dependent checks."""
        shown = format_path(prefix)
        return {
            p.code
            for p in self.items
            if p.severity == "error"
            and (p.path == shown or p.path.startswith((shown + ".", shown + "[")))
        }

    def report(self, **fields: Any) -> Report:
        scrub = self.redactor.scrub
        for p in self.items:
            p.message = scrub(p.message)
            p.value = _scrub_value(p.value, scrub)
        ordered = sorted(self.items, key=lambda p: (p.line is None, p.line or 0, p.code))
        errors = [p for p in ordered if p.severity == "error"]
        warnings = [p for p in ordered if p.severity == "warning"]
        return Report(valid=not errors, errors=errors, warnings=warnings, **fields)


def _scrub_value(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrub_value(v, scrub) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_value(v, scrub) for k, v in value.items()}
    return value
