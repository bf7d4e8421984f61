"""The report for people: a table of connectors, then each problem with its file line."""

from __future__ import annotations

from ._problems import ConnectorRow, Problem, Report

_POLICY = {"strict": "error", "warn": "warning", "off": "allowed"}


def render_text(report: Report) -> str:
    lines: list[str] = []
    where = report.file or "embedded default config"
    if report.residency is None:
        lines.append(f"config: {where}")
    else:
        lines.append(
            f"config: {where}   workspace region: {report.region or 'unknown'}   "
            f"residency: {report.residency}"
        )
    if report.connectors:
        lines.append("")
        lines.extend(_table(report))
    for title, problems in (("errors", report.errors), ("warnings", report.warnings)):
        if problems:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  {_problem(p, report)}" for p in problems)
    lines.append("")
    verdict = "valid" if report.valid else "invalid"
    lines.append(
        f"{verdict}: {_count(len(report.errors), 'error')}, "
        f"{_count(len(report.warnings), 'warning')}"
    )
    return "\n".join(lines)


def _table(report: Report) -> list[str]:
    with_check = any(row.check is not None for row in report.connectors)
    header = ["ID", "KIND", "CONNECTOR", "DIR", "REGION", "RESIDENCY"]
    if with_check:
        header.append("CHECK")
    rows = [header]
    for row in report.connectors:
        cells = [
            row.id + ("" if row.enabled else " (disabled)"),
            row.kind,
            row.connector or "?",
            row.direction or "?",
            _region(row),
            _verdict(row, report.residency),
        ]
        if with_check:
            cells.append(row.check or "")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _region(row: ConnectorRow) -> str:
    if row.region is None:
        return "unknown"
    return f"{row.region} ({row.region_from})"


def _verdict(row: ConnectorRow, residency: str | None) -> str:
    if row.residency == "crosses" and residency in _POLICY:
        return f"crosses ({_POLICY[residency]})"
    return row.residency


def _problem(problem: Problem, report: Report) -> str:
    file = problem.file or report.file or "config"
    loc = f"{file}:{problem.line}" if problem.line else file
    return f"{loc}: {problem.code} {problem.message}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
