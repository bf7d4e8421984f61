"""Scaffolding a new connector package from the template (`headwater init connector`).

The template lives in ``headwater/templates/connector/``: ``common/`` holds the files of
every connector package and ``in/`` / ``out/`` those of a source or a destination. Files end
in ``.tmpl`` (so no tool mistakes them for code of this package) and hold ``{{key}}``
placeholders; in paths, ``_package_tail_`` and ``_package_`` stand for the import name.
The result is the layout of the shipped plugins: ``pyproject.toml`` with the ``headwater``
entry point, ``src/headwater_<name>/{__init__.py,spec.json,py.typed}``, ``tests/``, README.

Why plain placeholder replacement and not Jinja: the template is small, the values are
identifiers checked here, and a connector author can read the template as it will come out.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import msgspec

from headwater_spec import __version__ as SPEC_PACKAGE_VERSION
from headwater_spec import meta_schema

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
TEMPLATE_SUFFIX = ".tmpl"


class ScaffoldError(ValueError):
    """An argument or target the scaffold cannot use; the message says what to change."""


class ConnectorTemplate(msgspec.Struct, frozen=True):
    """Everything the template needs, derived from the name, direction and regions."""

    name: str
    direction: str
    regions: tuple[str, ...]
    in_workspace: bool = False

    @property
    def package(self) -> str:
        return "headwater_" + self.package_tail

    @property
    def package_tail(self) -> str:
        return self.name.replace("-", "_")

    @property
    def dist(self) -> str:
        return f"headwater-{self.name}"

    @property
    def class_prefix(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def class_name(self) -> str:
        return self.class_prefix + ("Destination" if self.direction == "out" else "Source")

    def values(self) -> dict[str, str]:
        title = " ".join(part.capitalize() for part in self.name.split("-"))
        major, minor, *_ = [*SPEC_PACKAGE_VERSION.split("."), "0", "0"][:3]
        out = self.direction == "out"
        return {
            "name": self.name,
            "title": title,
            "direction": self.direction,
            "direction_word": "destination" if out else "source",
            "section": "destinations" if out else "sources",
            "dist": self.dist,
            "package": self.package,
            "package_tail": self.package_tail,
            "class_prefix": self.class_prefix,
            "class_name": self.class_name,
            "env_var": self.package_tail.upper() + "_API_KEY",
            "regions_json": json.dumps(region_entries(self.regions)),
            "region_list": ", ".join(f"`{r}`" for r in self.regions),
            "default_region": self.regions[0],
            "spec_pin": SPEC_PACKAGE_VERSION,
            "spec_range": f">={SPEC_PACKAGE_VERSION},<{major}.{int(minor) + 1}",
            "workspace_sources": (
                "\n[tool.uv.sources]\nheadwater-spec = { workspace = true }\n"
                if self.in_workspace
                else ""
            ),
            "summary": (
                f"It sends events to {title}'s HTTP API in JSON batches (`POST /v1/events`, "
                "API key as a Bearer token) and maps the answers to delivery outcomes."
                if out
                else f"It pulls events from {title}'s HTTP API page by page (`GET "
                "/v1/events?after=<cursor>`) and keeps its place in a checkpoint stored "
                "together with the events."
            ),
            "suite_summary": (
                "every event type, how the service's answers (2xx, 429 with and without "
                "Retry-After, 5xx, 4xx, timeouts, refused connections) map to outcomes"
                if out
                else "that the events are valid, and that a restart or a crash resumes from "
                "the checkpoint without gaps or duplicates"
            ),
        }


def region_entries(regions: Sequence[str]) -> dict[str, dict[str, str]]:
    """Placeholder endpoints per region, to be replaced with the service's real ones."""
    entries: dict[str, dict[str, str]] = {}
    for region in regions:
        if region == "any":
            entries[region] = {"description": "Wherever the instance's `endpoint` points."}
        elif region == "global":
            entries[region] = {"endpoint": "https://api.example.com"}
        else:
            entries[region] = {"endpoint": f"https://{region}.api.example.com"}
    return entries


def known_regions() -> list[str]:
    names: list[str] = meta_schema()["properties"]["regions"]["propertyNames"]["enum"]
    return names


def plan(name: str, direction: str, regions: Sequence[str], target: Path) -> ConnectorTemplate:
    """Check the arguments; raise ScaffoldError saying what to change."""
    if name.startswith("headwater-"):
        bare = name.removeprefix("headwater-")
        raise ScaffoldError(f"give the connector's name, not its distribution's: `{bare}`")
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"connector name {name!r} must be lowercase letters, digits and dashes, starting "
            "with a letter (e.g. `acme-crm`)"
        )
    if direction not in ("in", "out"):
        raise ScaffoldError(f"direction must be `in` or `out`, not {direction!r}")
    chosen = tuple(dict.fromkeys(regions)) or ("global",)
    unknown = [r for r in chosen if r not in known_regions()]
    if unknown:
        raise ScaffoldError(
            f"unknown region {unknown[0]!r}; known regions: {', '.join(known_regions())}"
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"{target} already exists and is not empty; pick another --dir or remove it"
        )
    return ConnectorTemplate(name, direction, chosen, in_workspace=inside_uv_workspace(target))


def inside_uv_workspace(target: Path) -> bool:
    """Whether ``target`` sits in a uv workspace (then headwater-spec comes from it)."""
    for folder in target.resolve().parents:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if "workspace" in data.get("tool", {}).get("uv", {}):
                return True
    return False


def render(template: ConnectorTemplate, target: Path) -> list[Path]:
    """Write the package into ``target``; return the files written, in order."""
    values = template.values()
    root = resources.files("headwater").joinpath("templates", "connector")
    written: list[Path] = []
    for part in ("common", template.direction):
        for source, relative in _walk(root.joinpath(part), ""):
            path = target / _render_path(relative, template)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_fill(source.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(path)
    readme = target / "README.md"
    spec = json.loads((target / "src" / template.package / "spec.json").read_text("utf-8"))
    readme.write_text(
        readme.read_text("utf-8").replace("{{config_keys}}", config_keys_markdown(spec)),
        encoding="utf-8",
    )
    return written


def scaffold(
    name: str, direction: str, regions: Sequence[str] = (), target: Path | None = None
) -> tuple[ConnectorTemplate, list[Path]]:
    """Plan and render a connector package; the library call behind the CLI."""
    folder = target if target is not None else Path(f"headwater-{name}")
    template = plan(name, direction, regions, folder)
    return template, render(template, folder)


def config_keys_markdown(spec: dict[str, Any]) -> str:
    schema = spec["config"]
    required = set(schema.get("required", []))
    lines = []
    for key, prop in schema.get("properties", {}).items():
        flags = [
            w for w, on in (("required", key in required), ("secret", prop.get("secret"))) if on
        ]
        if "default" in prop:
            flags.append(f"default `{json.dumps(prop['default'])}`")
        note = f" ({', '.join(flags)})" if flags else ""
        lines.append(f"- `{key}`{note}: {prop.get('description', '')}")
    return "\n".join(lines)


def _walk(folder: Traversable, prefix: str) -> list[tuple[Traversable, str]]:
    found: list[tuple[Traversable, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                found.extend(_walk(entry, relative + "/"))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append((entry, relative.removesuffix(TEMPLATE_SUFFIX)))
    return found


def _render_path(relative: str, template: ConnectorTemplate) -> str:
    return relative.replace("_package_tail_", template.package_tail).replace(
        "_package_", template.package
    )


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
