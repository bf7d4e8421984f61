"""The conformance suite covers every connector shipped in this repository.

Connectors are discovered the way the daemon finds them: the `headwater` entry points that
each distribution under plugins/ declares in its pyproject.toml, each plugin module's
`register_connectors` hook. For each connector, the spec checks of the suite run here, and
the plugin must have a test class that runs the whole suite on it (its tests/ folder is
part of the repository's test run, so CI runs the suite on every shipped connector). A new
plugin is picked up with no change here.
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec
import pytest

from headwater_spec import PROJECT_NAME, Connector, Destination, Source
from headwater_spec.conformance import SUITE_VERSION, spec_problems

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
SUITES = {"DestinationConformance", "SourceConformance"}


class Shipped(msgspec.Struct, frozen=True):
    """One connector (or one plugin that failed to give its connectors)."""

    plugin_dir: str
    entry_point: str
    cls: Any = None
    error: str = ""

    @property
    def id(self) -> str:
        name = getattr(self.cls, "__name__", "") or "load-error"
        return f"{self.plugin_dir}:{name}"


def _entry_points(plugin: Path) -> dict[str, str]:
    data = tomllib.loads((plugin / "pyproject.toml").read_text("utf-8"))
    points: dict[str, str] = data.get("project", {}).get("entry-points", {}).get("headwater", {})
    return points


def discover() -> list[Shipped]:
    found: list[Shipped] = []
    for plugin in sorted(p for p in PLUGINS.iterdir() if (p / "pyproject.toml").is_file()):
        for ep_name, target in _entry_points(plugin).items():
            module_name = target.partition(":")[0]
            try:
                module = importlib.import_module(module_name)
                classes: list[type[Connector]] = []
                module.register_connectors(register=classes.append)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                found.append(Shipped(plugin.name, ep_name, error=error))
                continue
            found.extend(Shipped(plugin.name, ep_name, cls) for cls in classes)
    return found


def suite_classes(plugin: Path) -> dict[str, str]:
    """Class names that a conformance class in plugin/tests binds as `connector`, with the
    file that does it."""
    bound: dict[str, str] = {}
    for path in sorted((plugin / "tests").glob("**/*.py")):
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if not bases & SUITES:
                continue
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "connector" for t in stmt.targets
                ):
                    value = stmt.value
                    name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", "")
                    bound[name] = str(path.relative_to(PLUGINS.parent))
    return bound


SHIPPED = discover()


def test_every_plugin_with_a_spec_is_registered() -> None:
    """A plugin folder that ships a spec.json but no `headwater` entry point is invisible
    to the daemon and to this suite."""
    missing = [
        plugin.name
        for plugin in sorted(PLUGINS.iterdir())
        if (plugin / "pyproject.toml").is_file()
        and list((plugin / "src").glob("headwater_*/spec*.json"))
        and not _entry_points(plugin)
    ]
    assert not missing, (
        f"plugins {missing} ship a spec but declare no [project.entry-points.headwater]; add "
        '`<name> = "headwater_<name>"` to their pyproject.toml'
    )


def test_connectors_are_discovered() -> None:
    assert any(s.cls is not None and s.cls.__name__ == "FileDestination" for s in SHIPPED)


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda s: s.id)
def test_shipped_connector_spec_conforms(shipped: Shipped) -> None:
    if shipped.error:
        pytest.fail(
            f"plugins/{shipped.plugin_dir} (entry point {shipped.entry_point!r}) cannot give "
            f"its connectors: {shipped.error}",
            pytrace=False,
        )
    problems = spec_problems(shipped.cls, suite_version=SUITE_VERSION)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        pytest.fail(f"plugins/{shipped.plugin_dir}:\n{lines}", pytrace=False)


@pytest.mark.parametrize("shipped", [s for s in SHIPPED if s.cls is not None], ids=lambda s: s.id)
def test_shipped_connector_is_registered_by_its_installed_entry_point(shipped: Shipped) -> None:
    """What the daemon sees: the installed distribution's metadata, not the pyproject."""
    found = [e for e in entry_points(group=PROJECT_NAME) if e.name == shipped.entry_point]
    assert len(found) == 1, f"entry point {shipped.entry_point!r} installed {len(found)} times"
    registered: list[type[Connector]] = []
    found[0].load().register_connectors(register=registered.append)
    assert shipped.cls in registered


@pytest.mark.parametrize("shipped", [s for s in SHIPPED if s.cls is not None], ids=lambda s: s.id)
def test_shipped_connector_runs_the_whole_suite(shipped: Shipped) -> None:
    cls = shipped.cls
    bound = suite_classes(PLUGINS / shipped.plugin_dir)
    if cls.__name__ in bound:
        return
    suite = "DestinationConformance" if issubclass(cls, Destination) else "SourceConformance"
    assert issubclass(cls, (Destination, Source))
    tail = shipped.plugin_dir.replace("-", "_")
    pytest.fail(
        f"plugins/{shipped.plugin_dir} ships {cls.__name__} but no test class runs the "
        f"conformance suite on it; add plugins/{shipped.plugin_dir}/tests/"
        f"test_{tail}_conformance.py with `class Test{cls.__name__}Conformance({suite}): "
        f"connector = {cls.__name__}` (see docs/connectors.md, 'The conformance suite')",
        pytrace=False,
    )
