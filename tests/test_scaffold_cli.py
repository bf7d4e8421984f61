"""`headwater init connector`: what it writes, what it refuses, and that the shipped plugins
have the layout it produces. (Installing and running a generated package end to end is
tests/test_scaffold_venv.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.scaffold import ConnectorTemplate, scaffold
from headwater_spec import ConnectorSpec, Destination, Source, __version__
from headwater_spec.conformance import SUITE_VERSION, spec_problems

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["init", "connector", *args])
    return result.exit_code, result.output


def layout(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_out_connector_is_written_with_the_plugin_layout(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    code, output = invoke(
        "acme-crm", "--direction", "out", "--region", "us", "--region", "eu", "--dir", str(target)
    )
    assert code == 0, output
    assert layout(target) == {
        "pyproject.toml",
        "README.md",
        "src/headwater_acme_crm/__init__.py",
        "src/headwater_acme_crm/py.typed",
        "src/headwater_acme_crm/spec.json",
        "tests/test_acme_crm_conformance.py",
    }
    assert "created headwater-acme-crm (AcmeCrmDestination)" in output
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "headwater-acme-crm"
    assert project["project"]["entry-points"]["headwater"] == {"acme-crm": "headwater_acme_crm"}
    assert (
        f"headwater-spec[conformance]=={__version__}"
        in project["project"]["optional-dependencies"]["test"]
    )
    assert "uv" not in project.get("tool", {}), "outside a uv workspace no workspace sources"
    spec = json.loads((target / "src/headwater_acme_crm/spec.json").read_text())
    assert spec["direction"] == "out"
    assert spec["regions"] == {
        "us": {"endpoint": "https://us.api.example.com"},
        "eu": {"endpoint": "https://eu.api.example.com"},
    }
    assert spec["default_region"] == "us"
    readme = (target / "README.md").read_text()
    assert "- `api_key` (required, secret):" in readme
    assert "{{" not in readme + (target / "src/headwater_acme_crm/__init__.py").read_text()


def test_generated_specs_pass_the_suites_spec_checks(tmp_path: Path) -> None:
    for direction in ("in", "out"):
        template, _ = scaffold(f"kit-{direction}", direction, ["eu", "any"], tmp_path / direction)
        text = (tmp_path / direction / "src" / template.package / "spec.json").read_text()
        spec = ConnectorSpec.from_json(text)

        base = Destination if direction == "out" else Source
        cls = type(template.class_name, (base,), {"spec": spec})
        assert spec_problems(cls, suite_version=SUITE_VERSION) == []
        assert spec.regions["any"].endpoint is None


def test_in_connector_defaults_to_the_global_region_in_the_default_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = invoke("acme-feed", "--direction", "in")
    assert code == 0, output
    spec = json.loads(
        (tmp_path / "headwater-acme-feed/src/headwater_acme_feed/spec.json").read_text()
    )
    assert spec["direction"] == "in"
    assert spec["regions"] == {"global": {"endpoint": "https://api.example.com"}}
    assert (
        "emit_and_checkpoint"
        in (tmp_path / "headwater-acme-feed/src/headwater_acme_feed/__init__.py").read_text()
    )


def test_inside_a_uv_workspace_headwater_spec_comes_from_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["plugins/*"]\n')
    template, _ = scaffold("inner", "out", [], tmp_path / "plugins" / "inner")
    assert template.in_workspace
    project = tomllib.loads((tmp_path / "plugins/inner/pyproject.toml").read_text())
    assert project["tool"]["uv"]["sources"] == {"headwater-spec": {"workspace": True}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme_CRM", "--direction", "out"], "connector name 'Acme_CRM' must be lowercase"),
        (
            ["headwater-acme", "--direction", "out"],
            "give the connector's name, not its distribution's: `acme`",
        ),
        (["acme", "--direction", "sideways"], "Invalid value for '--direction'"),
        (
            ["acme", "--direction", "out", "--region", "mars"],
            "Invalid value for '--region': 'mars'",
        ),
        (["acme"], "Missing option '--direction'"),
    ],
)
def test_bad_arguments_say_what_to_change(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = invoke(*args, "--dir", str(tmp_path / "x"))
    assert code == 2
    assert message in output
    assert not (tmp_path / "x").exists()


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, output = invoke("acme", "--direction", "out", "--dir", str(tmp_path))
    assert code == 2
    assert "already exists and is not empty; pick another --dir or remove it" in output
    assert layout(tmp_path) == {"keep.txt"}


def test_names_derive_from_the_connector_name() -> None:
    template = ConnectorTemplate("acme-big-crm", "out", ("us",))
    assert (template.dist, template.package, template.class_name) == (
        "headwater-acme-big-crm",
        "headwater_acme_big_crm",
        "AcmeBigCrmDestination",
    )


@pytest.mark.parametrize(
    "plugin",
    sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()),
)
def test_shipped_plugins_have_the_template_layout(plugin: str) -> None:
    folder = ROOT / "plugins" / plugin
    package = "headwater_" + plugin.replace("-", "_")
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"headwater-{plugin}"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [f"src/{package}"]
    problems = [
        path
        for path in ("README.md", f"src/{package}/__init__.py", f"src/{package}/py.typed", "tests")
        if not (folder / path).exists()
    ]
    if not list((folder / "src" / package).glob("spec*.json")):
        problems.append(f"src/{package}/spec.json")
    if "headwater" not in project["project"].get("entry-points", {}):
        problems.append("[project.entry-points.headwater]")
    assert not problems, f"plugins/{plugin} lacks {problems} (see `headwater init connector`)"


@pytest.mark.timeout(300)
def test_generated_packages_are_lint_and_type_clean(tmp_path: Path) -> None:
    """What authors start from passes ruff and mypy --strict with its own pyproject."""
    folders = {d: tmp_path / d for d in ("in", "out")}
    for direction, folder in folders.items():
        scaffold(f"lint-{direction}", direction, ["us"], folder)
        for cmd in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *cmd], cwd=folder, capture_output=True, text=True
            )
            assert result.returncode == 0, f"ruff {cmd[0]} in {direction}:\n{result.stdout}"
    sources = [str(f / "src") for f in folders.values()]
    tests = [str(p) for f in folders.values() for p in (f / "tests").glob("*.py")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(MYPY_CACHE),
            *sources,
            *tests,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "MYPYPATH": os.pathsep.join(sources)},
    )
    assert result.returncode == 0, result.stdout


MYPY_CACHE = Path(tempfile.gettempdir()) / "headwater-template-mypy-cache"
"""Kept between runs (only this test uses it), so mypy checks the template in ~1 s."""
