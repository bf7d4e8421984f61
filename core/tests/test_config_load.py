"""Loading `headwater.toml`: sections into Structs, ${ENV} references, connector keys beside
the framework's, each instance checked against its connector's spec, and errors that name
the file and the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from headwater.config import (
    ConfigError,
    MissingEnvError,
    check_connector_options,
    default_config_text,
    load_config,
)
from headwater.plugins import load_plugins

DESIGN_EXAMPLE = textwrap.dedent(
    """
    [workspace]
    name = "acme"
    region = "eu"
    residency = "strict"
    data_dir = "./headwater-data"

    [server]
    listen = "127.0.0.1:8080"
    admin_token = "${HEADWATER_ADMIN_TOKEN}"

    [log]
    backend = "lmdb"

    [sources.web]
    connector = "tracking-api"
    write_keys = ["${WEB_WRITE_KEY}"]

    [destinations.product-analytics]
    connector = "mixpanel"
    region = "eu"
    events = ["track", "identify"]
    project_token = "${MIXPANEL_TOKEN}"

    [destinations.archive]
    connector = "file"
    path = "archive/${ARCHIVE_NAME:-events}.jsonl"
    start = "beginning"
    """
)
ENV = {"HEADWATER_ADMIN_TOKEN": "adm", "WEB_WRITE_KEY": "wk-1", "MIXPANEL_TOKEN": "mp-secret"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "headwater.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_the_design_example_loads_into_structs_with_env_references_resolved(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, DESIGN_EXAMPLE), environ=ENV)
    assert (config.workspace.name, config.workspace.region) == ("acme", "eu")
    assert config.server.admin_token == "adm"
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.log.backend == "lmdb"
    web = config.sources["web"]
    assert (web.kind, web.connector, web.options) == (
        "source",
        "tracking-api",
        {"write_keys": ["wk-1"]},
    )
    mixpanel = config.destinations["product-analytics"]
    assert mixpanel.region == "eu" and mixpanel.events == ["track", "identify"]
    assert mixpanel.options == {"project_token": "mp-secret"}  # framework keys split out
    archive = config.destinations["archive"]
    assert archive.options == {"path": "archive/events.jsonl"}  # ${VAR:-default}
    assert archive.start == "beginning"
    assert [i.id for i in config.instances()] == ["web", "product-analytics", "archive"]
    # A relative data dir is taken from the config file's folder, not the working dir.
    assert config.data_dir == tmp_path / "conf" / "headwater-data"


def test_framework_keys_may_come_from_the_environment_too(tmp_path: Path) -> None:
    text = '[workspace]\nresidency = "${RESIDENCY:-warn}"\n'
    assert load_config(write(tmp_path, text), environ={}).workspace.residency == "warn"


def test_dollar_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    text = '[destinations.a]\nconnector = "file"\npath = "cost-$$5-${X}.jsonl"\n'
    config = load_config(write(tmp_path, text), environ={"X": "y"})
    assert config.destinations["a"].options["path"] == "cost-$5-y.jsonl"


def test_an_unset_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, DESIGN_EXAMPLE)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={k: v for k, v in ENV.items() if k != "MIXPANEL_TOKEN"})
    error = caught.value
    assert (error.file, error.path) == (str(path), "destinations.product-analytics.project_token")
    assert str(error).startswith(f"{path}: `destinations.product-analytics.project_token`: ")
    assert "${MIXPANEL_TOKEN}, which is not set" in str(error)


def test_unset_variables_can_be_collected_instead_of_raised(tmp_path: Path) -> None:
    missing: list[MissingEnvError] = []
    load_config(write(tmp_path, DESIGN_EXAMPLE), environ={}, missing=missing)
    assert sorted(m.variable for m in missing) == [
        "HEADWATER_ADMIN_TOKEN",
        "MIXPANEL_TOKEN",
        "WEB_WRITE_KEY",
    ]
    assert "sources.web.write_keys[0]" in {m.path for m in missing}


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[workspace]\nregoin = "eu"\n', "workspace.regoin", "did you mean `region`?"),
        ("[workspace]\nregion = 5\n", "workspace.region", "Expected `str`, got `int`"),
        (
            '[workspace]\nresidency = "loose"\n',
            "workspace.residency",
            "'loose' is not one of 'off', 'strict', 'warn'",
        ),
        ("[server]\nlisten = 8080\n", "server.listen", "Expected `str`"),
        ('[log]\nbackend = "kafka"\n', "log.backend", "'kafka' is not one of 'jetstream', 'lmdb'"),
        ("[serve]\n", "serve", "unknown section"),
        ('[destinations.a]\npath = "x"\n', "destinations.a", "missing `connector`"),
        (
            '[destinations.a]\nconnector = "file"\nevents = "track"\n',
            "destinations.a.events",
            "Expected `array",
        ),
        (
            '[sources.web]\nconnector = "x"\nenabled = "yes"\n',
            "sources.web.enabled",
            "Expected `bool`",
        ),
        ("destinations = 3\n", "destinations", "must be a table"),
    ],
)
def test_a_bad_config_is_refused_naming_file_and_key(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).startswith(f"{path}: `{key}`"), str(caught.value)
    assert message in str(caught.value)


def test_broken_toml_and_a_missing_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[workspace\n")
    with pytest.raises(ConfigError, match=r"headwater.toml: not valid TOML: .*line 1"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"nope.toml: file not found"):
        load_config(tmp_path / "nope.toml")


def test_without_a_file_the_embedded_default_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.path is None
    assert "[workspace]" in default_config_text()
    assert config.destinations["local-file"].connector == "file"
    assert config.sources["dev"].options["write_keys"] == ["dev-write-key"]
    (tmp_path / "headwater.toml").write_text('[workspace]\nname = "here"\n')
    assert load_config(None).workspace.name == "here"  # ./headwater.toml wins when present


def test_instances_are_checked_against_their_connectors_spec(tmp_path: Path) -> None:
    specs = {c.name: c.spec.config for c in load_plugins(only={"headwater-file"})}
    ok = load_config(write(tmp_path, '[destinations.a]\nconnector = "file"\npath = "x.jsonl"\n'))
    check_connector_options(ok, specs)

    bad = load_config(write(tmp_path, '[destinations.a]\nconnector = "file"\npth = "x.jsonl"\n'))
    with pytest.raises(ConfigError) as caught:
        check_connector_options(bad, specs)
    assert str(caught.value).startswith(f"{bad.path}: `destinations.a.pth`: unknown key; ")
    assert "did you mean `path`?" in str(caught.value)

    absent = load_config(write(tmp_path, '[destinations.a]\nconnector = "file"\n'))
    with pytest.raises(ConfigError, match=r"`destinations.a.path`: required key is missing"):
        check_connector_options(absent, specs)

    typed = load_config(write(tmp_path, '[destinations.a]\nconnector = "file"\npath = 7\n'))
    with pytest.raises(ConfigError, match=r"`destinations.a.path`: 7 is not of type 'string'"):
        check_connector_options(typed, specs)

    unknown = load_config(write(tmp_path, '[destinations.a]\nconnector = "filez"\n'))
    with pytest.raises(
        ConfigError, match=r"`destinations.a.connector`: .*'filez' is not installed"
    ):
        check_connector_options(unknown, specs)


def test_secret_values_never_appear_in_option_errors(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"token": {"type": "string", "secret": True, "pattern": "^tok_"}},
    }
    text = '[destinations.a]\nconnector = "vault"\ntoken = "${T}"\n'
    config = load_config(write(tmp_path, text), environ={"T": "hunter2-very-secret"})
    with pytest.raises(ConfigError) as caught:
        check_connector_options(config, {"vault": schema})
    assert "destinations.a.token" in str(caught.value)
    assert "hunter2-very-secret" not in str(caught.value)
    assert "***" in str(caught.value)
