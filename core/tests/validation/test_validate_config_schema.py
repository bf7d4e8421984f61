"""`headwater config schema`: the whole file's JSON Schema, its committed copy, and its
agreement with `headwater validate` on the table of configs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.plugins import ConnectorRegistry, load_plugins
from headwater.validation import config_file_schema

from .conftest import DATA
from .test_validate_table import CASES

ROOT = Path(__file__).parents[3]
COMMITTED = ROOT / "docs" / "headwater.schema.json"
SCHEMA_CODES = {
    "HW010", "HW011", "HW012", "HW013", "HW020", "HW021", "HW022",
    "HW023", "HW024", "HW025", "HW030", "HW031", "HW050", "HW051",
}  # fmt: skip
"""Problems the schema alone can find; the others need the environment or the whole graph."""

NOT_FOR_THE_SCHEMA = {
    "env_defaults.toml": '`region = "${HW_REGION:-us}"`: only validate resolves references',
    "invalid_toml.toml": "not TOML",
    "does_not_exist.toml": "no file",
}


def _shipped_distributions() -> set[str]:
    names = set()
    for pyproject in (ROOT / "plugins").glob("*/pyproject.toml"):
        names.add(tomllib.loads(pyproject.read_text())["project"]["name"])
    return names


def _render(registry: ConnectorRegistry) -> str:
    return json.dumps(config_file_schema(c.spec for c in registry), indent=2) + "\n"


def test_committed_schema_is_the_one_of_the_shipped_connectors() -> None:
    registry = load_plugins(only=_shipped_distributions())
    generated = _render(registry)
    failures = "; ".join(f.error for f in registry.failures)
    assert COMMITTED.read_text() == generated, (
        "docs/headwater.schema.json is out of date; regenerate it with "
        "`uv run headwater config schema > docs/headwater.schema.json`"
        + (f" (plugin failures: {failures})" if failures else "")
    )


def test_schema_is_valid_draft_2020_12_and_names_every_connector(
    registry: ConnectorRegistry,
) -> None:
    schema = config_file_schema(c.spec for c in registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    sources = schema["$defs"]["source"]["properties"]["connector"]["enum"]
    destinations = schema["$defs"]["destination"]["properties"]["connector"]["enum"]
    assert sources == ["collector", "puller"]
    assert destinations == ["file", "relay", "saas", "saas-us"]
    assert schema["properties"]["workspace"]["properties"]["region"]["enum"] == ["us", "eu"]


@pytest.mark.usefixtures("installed_test_plugins")
def test_cli_prints_the_schema_of_the_installed_connectors(registry: ConnectorRegistry) -> None:
    result = CliRunner().invoke(cli, ["config", "schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == _render(registry)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if not c[1] and c[0] not in NOT_FOR_THE_SCHEMA],
    ids=lambda c: c[0],
)
def test_schema_agrees_with_validate_on_the_table(
    case: tuple[str, tuple[str, ...], int, tuple[str, ...], tuple[str, ...]],
    registry: ConnectorRegistry,
) -> None:
    name, _, _, errors, _ = case
    schema = config_file_schema(c.spec for c in registry)
    data = tomllib.loads((DATA / name).read_text())
    problems = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    expected_invalid = bool(SCHEMA_CODES & set(errors))
    assert bool(problems) is expected_invalid, [p.message for p in problems]


def test_schema_accepts_env_references_for_secrets_only(registry: ConnectorRegistry) -> None:
    schema = config_file_schema(c.spec for c in registry)
    validator = jsonschema.Draft202012Validator(schema)
    base = {"sources": {"web": {"connector": "collector", "write_keys": ["k"]}}}
    good = {**base, "destinations": {"a": {"connector": "saas", "api_key": "${SAAS_KEY}"}}}
    assert not list(validator.iter_errors(good))
    literal = {**base, "destinations": {"a": {"connector": "saas", "api_key": "short"}}}
    assert list(validator.iter_errors(literal))
    not_secret = {
        **base,
        "destinations": {"a": {"connector": "saas", "api_key": "${K}", "retries": "${R}"}},
    }
    assert list(validator.iter_errors(not_secret))


def test_connector_schemas_with_their_own_defs_keep_working() -> None:
    from headwater_spec import ConnectorSpec

    spec = ConnectorSpec.from_dict(
        {
            "name": "with-defs",
            "version": "1",
            "direction": "out",
            "regions": {"us": {}},
            "config": {
                "type": "object",
                "additionalProperties": False,
                "$defs": {"port": {"type": "integer", "minimum": 1}},
                "properties": {"port": {"$ref": "#/$defs/port"}},
            },
        }
    )
    validator = jsonschema.Draft202012Validator(config_file_schema([spec]))
    base = {"sources": {}, "destinations": {"d": {"connector": "with-defs", "region": "us"}}}
    assert not list(validator.iter_errors(base))
    base["destinations"]["d"]["port"] = 0
    assert [e.validator for e in validator.iter_errors(base)] == ["minimum"]
    base["destinations"]["d"].update(port=1, region="eu")
    assert [e.validator for e in validator.iter_errors(base)] == ["enum"]
