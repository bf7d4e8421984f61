"""Development sessions. Every session runs inside the uv workspace environment.

uv run nox -s tests       # the test suite (same as `uv run pytest`)
uv run nox -s lint        # ruff
uv run nox -s typecheck   # mypy --strict on headwater_spec and headwater
uv run nox -s bench       # the benchmarks under benchmarks/, each printing ratios
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "lint", "typecheck"]
ROOT = Path(__file__).parent
TYPED = ["connector_spec/src/headwater_spec", "core/src/headwater"]


@nox.session
def tests(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "ruff", "check", ".")
    session.run(sys.executable, "-m", "ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "mypy", *TYPED)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmarks/bench_*.py; each prints its figures beside its baselines."""
    selected = session.posargs or sorted(str(p) for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for script in selected:
        session.log(f"== {script}")
        session.run(sys.executable, script)
