"""Secrets inside an object (the webhook's `headers` values): `headwater validate` and the
loader never show them, in text or JSON, in warnings or in errors that echo a value; the
header names stay visible."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import ConfigError, check_connector_options, config_from_dict
from headwater.plugins import load_plugins
from headwater.validation import config_file_schema

TOKEN = "s3cret-header-token-9731"
ENV_TOKEN = "env-header-token-4417"
BASE = """
[workspace]
region = "us"

[sources.web]
connector = "tracking-api"
write_keys = ["${WRITE_KEY}"]

[destinations.hook]
connector = "webhook"
region = "us"
url = "https://hooks.example.com/in"
"""
PLUGINS = "headwater-webhook,headwater-tracking-api"


def _validate(tmp_path: object, text: str, fmt: str) -> tuple[int, str]:
    path = tmp_path / "headwater.toml"  # type: ignore[operator]
    path.write_text(text)
    env = {"HEADWATER_PLUGINS": PLUGINS, "WRITE_KEY": "wk-1234", "HOOK_TOKEN": ENV_TOKEN}
    result = CliRunner().invoke(cli, ["validate", str(path), "--format", fmt], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_literal_header_value_is_a_warning_that_never_shows_it(
    tmp_path: object, fmt: str
) -> None:
    text = BASE + f'headers = {{ Authorization = "Bearer {TOKEN}" }}\n'
    code, out = _validate(tmp_path, text, fmt)
    assert code == 0, out
    assert TOKEN not in out
    assert "destinations.hook.headers.Authorization" in out and "HW040" in out


def test_a_literal_plain_header_is_no_warning_but_a_credential_like_one_is(
    tmp_path: object,
) -> None:
    """Header names are the user's: a value in that map warns (HW040) only when its name or
    value reads like a credential; `Accept` or a tenant id is no reason to fail a strict
    CI. Every value is still masked in free text."""
    text = BASE + (
        'headers = { Accept = "application/json", X-Tenant = "acme-corp", '
        'X-Api-Key = "k-123456", Custom = "Basic dXNlcjpwYXNz" }\n'
    )
    code, out = _validate(tmp_path, text, "json")
    assert code == 0, out
    warned = {w["path"] for w in json.loads(out)["warnings"] if w["code"] == "HW040"}
    assert warned == {"destinations.hook.headers.X-Api-Key", "destinations.hook.headers.Custom"}
    assert "k-123456" not in out and "dXNlcjpwYXNz" not in out


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_header_value_that_breaks_the_schema_is_shown_as_stars(
    tmp_path: object, fmt: str
) -> None:
    text = BASE + f'headers = {{ Authorization = ["Bearer {TOKEN}", "{ENV_TOKEN}"] }}\n'
    code, out = _validate(tmp_path, text, fmt)
    assert code == 1, out
    assert TOKEN not in out and ENV_TOKEN not in out
    if fmt == "json":
        [error] = json.loads(out)["errors"]
        assert error["code"] == "HW030" and error["value"] == "***"
        assert error["path"] == "destinations.hook.headers.Authorization"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_header_from_the_environment_is_scrubbed_as_resolved(tmp_path: object, fmt: str) -> None:
    """The variable a header references is a secret everywhere, even where another key's
    error quotes it."""
    text = BASE.replace("https://hooks.example.com/in", "ftp://hooks.example.com/${HOOK_TOKEN}")
    text += 'headers = { Authorization = "Bearer ${HOOK_TOKEN}" }\n'
    code, out = _validate(tmp_path, text, fmt)
    assert code == 1 and "destinations.hook.url" in out and "ftp://hooks.example.com/" in out
    assert ENV_TOKEN not in out and "HW040" not in out


def test_the_loader_error_does_not_echo_a_header_value() -> None:
    registry = load_plugins(only=set(PLUGINS.split(",")))
    config = config_from_dict(
        {
            "destinations": {
                "hook": {
                    "connector": "webhook",
                    "url": "https://hooks.example.com/in",
                    "headers": {"Authorization": [f"Bearer {TOKEN}"]},
                }
            }
        }
    )
    with pytest.raises(ConfigError) as caught:
        check_connector_options(config, {c.name: c.spec.config for c in registry})
    assert "destinations.hook.headers.Authorization" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_the_exported_schema_takes_env_references_for_header_values() -> None:
    registry = load_plugins(only=set(PLUGINS.split(",")))
    schema = config_file_schema(c.spec for c in registry)
    headers = schema["$defs"]["connector-webhook"]["properties"]["headers"]
    values = headers["additionalProperties"]
    assert values["secret"] is True
    assert {"type": "string"} in values["anyOf"] and len(values["anyOf"]) == 2
