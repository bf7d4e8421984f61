"""The plugin host: connector packages installed as distributions are found through the
`headwater` entry point group; a broken one is reported by name and the others still load;
HEADWATER_PLUGINS selects distributions.

Each test installs throwaway distributions the way pip lays them out (a package beside its
``<name>-<version>.dist-info`` with METADATA and entry_points.txt) into a directory put on
sys.path, so importlib.metadata finds them exactly as it finds an installed wheel.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.plugins import PLUGINS_ENV, UnknownConnectorError, load_plugins

GOOD_MODULE = textwrap.dedent(
    """
    from headwater_spec import DELIVERED, ConnectorSpec, Destination, hookimpl

    class ExampleDestination(Destination):
        spec = ConnectorSpec.from_package(__package__)

        async def send(self, batch):
            return [DELIVERED] * len(batch)

    @hookimpl
    def register_connectors(register):
        register(ExampleDestination)
    """
)


def spec_json(name: str, **changes: object) -> str:
    spec: dict[str, object] = {
        "name": name,
        "version": "2.0.0",
        "direction": "out",
        "regions": {"eu": {"endpoint": "https://eu.example.com"}},
        "config": {"type": "object", "properties": {"token": {"type": "string", "secret": True}}},
    }
    spec.update(changes)
    return json.dumps({k: v for k, v in spec.items() if v is not None})


Install = Callable[..., str]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Install:
    """install(dist, module_source, spec=None) -> the connector name; unique per test."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    tag = uuid.uuid4().hex[:8]

    def installer(dist: str, source: str, spec: str | None = None, version: str = "1.4.2") -> str:
        module = f"{dist.replace('-', '_')}_{tag}"
        package = site / module
        package.mkdir()
        (package / "__init__.py").write_text(source)
        name = f"{dist}-{tag}"
        if spec is not None:
            (package / "spec.json").write_text(spec.replace("{name}", name))
        info = site / f"{dist.replace('-', '_')}_{tag}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}-{tag}\nVersion: {version}\n"
        )
        (info / "entry_points.txt").write_text(f"[headwater]\n{dist}-{tag} = {module}\n")
        return name

    return installer


def test_an_installed_distribution_is_found_through_its_entry_point(install: Install) -> None:
    name = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    registry = load_plugins()
    loaded = registry.get(name)
    assert loaded.distribution == name  # the test installs dist and connector under one name
    assert loaded.version == "1.4.2"
    assert loaded.spec.direction == "out"
    assert loaded.cls.__name__ == "ExampleDestination"
    assert registry.failures == []


def test_built_in_connectors_are_found_like_external_ones() -> None:
    registry = load_plugins()
    file = registry.get("file")
    assert file.distribution == "headwater-file"
    assert file.plugin == "file"  # its entry point name in the `headwater` group


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(install: Install) -> None:
    good = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    broken = install("hwtest-broken", "import headwater_no_such_module\n")
    registry = load_plugins()
    assert good in registry and "file" in registry
    [failure] = registry.failures
    assert failure.plugin == broken and failure.distribution == broken
    assert f"plugin {broken!r}" in failure.error
    assert "failed to import: ModuleNotFoundError" in failure.error
    assert "headwater_no_such_module" in failure.error


def test_a_connector_with_an_invalid_spec_is_refused_naming_plugin_and_field(
    install: Install,
) -> None:
    bad = install("hwtest-badspec", GOOD_MODULE, spec_json("{name}", direction=None))
    also_bad = install("hwtest-badregion", GOOD_MODULE, spec_json("{name}", regions={"mars": {}}))
    registry = load_plugins()
    assert bad not in registry and also_bad not in registry and "file" in registry
    errors = {f.plugin: f.error for f in registry.failures}
    assert "'direction' is a required property" in errors[bad]
    assert f"{bad.replace('-', '_')}/spec.json" in errors[bad]
    assert "unknown region 'mars'" in errors[also_bad]
    assert "at /regions" in errors[also_bad]


def test_a_connector_spec_given_as_a_dict_is_checked_at_registration(install: Install) -> None:
    source = textwrap.dedent(
        """
        from headwater_spec import Destination, hookimpl

        class DictSpec(Destination):
            spec = {"name": "dict-spec", "version": "1", "direction": "out",
                    "regions": {"us": {}}, "config": {"type": "object", "properties": 3}}

        @hookimpl
        def register_connectors(register):
            register(DictSpec)
        """
    )
    plugin = install("hwtest-dictspec", source)
    registry = load_plugins()
    [failure] = registry.failures
    assert failure.plugin == plugin
    assert "connector DictSpec" in failure.error
    assert "at /config/properties" in failure.error


def test_a_misspelled_hook_is_reported_by_check_pending(install: Install) -> None:
    source = textwrap.dedent(
        """
        from headwater_spec import hookimpl

        @hookimpl
        def register_connector(register):
            pass
        """
    )
    plugin = install("hwtest-typo", source)
    registry = load_plugins()
    [failure] = registry.failures
    assert failure.plugin == plugin
    assert "is invalid" in failure.error and "register_connector" in failure.error
    assert "file" in registry


def test_a_plugin_raising_in_register_connectors_does_not_stop_the_others(
    install: Install,
) -> None:
    source = textwrap.dedent(
        """
        from headwater_spec import hookimpl

        @hookimpl
        def register_connectors(register):
            raise RuntimeError("cannot reach the licence server")
        """
    )
    plugin = install("hwtest-raises", source)
    good = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    registry = load_plugins()
    assert good in registry
    [failure] = registry.failures
    assert failure.plugin == plugin
    assert "RuntimeError: cannot reach the licence server" in failure.error


def test_a_second_connector_with_a_taken_name_is_refused(install: Install) -> None:
    source = GOOD_MODULE
    plugin = install("hwtest-dup", source, spec_json("file"))
    registry = load_plugins()
    assert registry.get("file").distribution == "headwater-file"
    [failure] = registry.failures
    assert failure.plugin == plugin
    assert "'file' is already registered by headwater-file" in failure.error


def test_headwater_plugins_loads_only_the_named_distributions(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    broken = install("hwtest-broken", "raise ImportError('must not be imported')\n")
    monkeypatch.setenv(PLUGINS_ENV, f"{good.upper().replace('-', '_')}, headwater-file")
    registry = load_plugins()
    assert sorted(c.name for c in registry) == sorted(["file", good])
    assert registry.failures == [], f"{broken} was imported although not selected"
    monkeypatch.setenv(PLUGINS_ENV, "headwater-file")
    assert [c.name for c in load_plugins()] == ["file"]
    monkeypatch.setenv(PLUGINS_ENV, "")
    assert good in load_plugins()


def test_asking_for_an_unknown_connector_lists_the_installed_ones() -> None:
    registry = load_plugins(only={"headwater-file"})
    with pytest.raises(UnknownConnectorError, match=r"'nope' .*installed: file"):
        registry.get("nope")


def test_connectors_list_json_shape(install: Install) -> None:
    good = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    broken = install("hwtest-broken", "import headwater_no_such_module\n")
    result = CliRunner().invoke(cli, ["connectors", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    by_name = {row["name"]: row for row in rows}
    assert by_name[good] == {
        "name": good,
        "direction": "out",
        "regions": ["eu"],
        "distribution": good,
        "version": "1.4.2",
        "connector_version": "2.0.0",
    }
    assert by_name["file"]["distribution"] == "headwater-file"
    for row in rows:
        assert {"name", "direction", "regions", "distribution", "version"} <= set(row)
        assert row["direction"] in ("in", "out")
    assert broken in result.stderr  # reported by name, outside the JSON


def test_connectors_spec_prints_the_spec_and_refuses_unknown_names(install: Install) -> None:
    good = install("hwtest-good", GOOD_MODULE, spec_json("{name}"))
    runner = CliRunner()
    result = runner.invoke(cli, ["connectors", "spec", good])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["regions"] == {"eu": {"endpoint": "https://eu.example.com"}}
    missing = runner.invoke(cli, ["connectors", "spec", "nope"])
    assert missing.exit_code == 1
    assert "no connector named 'nope'" in missing.stderr
