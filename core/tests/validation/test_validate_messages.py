"""What the problems say: hints, pointers, values, lines, rows; and the file/usage edges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import default_config_text
from headwater.plugins import ConnectorRegistry, PluginFailure, load_plugins
from headwater.validation import Problem, Report, render_text, validate_file, validate_text

from .conftest import DATA, ENV, HERE, PLUGINS


def _validate(registry: ConnectorRegistry, name: str, **kwargs: object) -> Report:
    return validate_file(DATA / name, registry=registry, environ=ENV, **kwargs)  # type: ignore[arg-type]


def _only(report: Report, code: str) -> Problem:
    found = [p for p in report.errors + report.warnings if p.code == code]
    assert len(found) == 1, found
    return found[0]


def test_misspelt_key_gets_did_you_mean_with_its_line(registry: ConnectorRegistry) -> None:
    problem = _only(_validate(registry, "typo_unknown_key.toml"), "HW023")
    assert "unknown key `retires`" in problem.message
    assert "did you mean `retries`?" in problem.message
    assert problem.path == "destinations.analytics.retires"
    assert problem.line == 12


def test_missing_known_connector_says_what_to_install(registry: ConnectorRegistry) -> None:
    problem = _only(_validate(registry, "connector_not_installed.toml"), "HW021")
    assert "pip install headwater-mixpanel" in problem.message
    typo = _only(_validate(registry, "connector_typo.toml"), "HW021")
    assert "did you mean `saas`?" in typo.message
    assert typo.path == "destinations.analytics.connector"


def test_option_error_has_pointer_value_and_rule(registry: ConnectorRegistry) -> None:
    report = _validate(registry, "option_schema_errors.toml")
    by_path = {p.path: p for p in report.errors}
    retries = by_path["destinations.analytics.retries"]
    assert (retries.pointer, retries.rule, retries.value, retries.line) == (
        "/retries",
        "maximum: 10",
        99,
        12,
    )
    assert "/retries" in retries.message and "99" in retries.message
    label = by_path["destinations.analytics.labels[1]"]
    assert (label.pointer, label.rule, label.value) == (
        "/labels/1",
        "maxLength: 8",
        "much-too-long-label",
    )
    assert label.line == 14


def test_secret_breaking_a_rule_is_reported_without_its_value(
    registry: ConnectorRegistry,
) -> None:
    report = _validate(registry, "secret_literal_breaks_pattern.toml")
    problem = _only(report, "HW030")
    assert problem.value == "***"
    assert problem.rule == 'pattern: "^sk_"'
    assert problem.pointer == "/api_key"
    rendered = json.dumps(report.to_builtins()) + render_text(report)
    assert "not-a-key-but-secret-1234" not in rendered
    assert "literal-write-key-77" not in rendered


def test_missing_env_names_the_variable_and_allow_missing_env_downgrades_it(
    registry: ConnectorRegistry,
) -> None:
    problem = _only(_validate(registry, "missing_env.toml"), "HW041")
    assert "${MISSING_KEY}" in problem.message and problem.severity == "error"
    assert problem.path == "destinations.analytics.api_key"
    relaxed = _validate(registry, "missing_env.toml", allow_missing_env=True)
    assert relaxed.exit_code == 0
    assert _only(relaxed, "HW041").severity == "warning"


def test_env_values_decide_validity(registry: ConnectorRegistry) -> None:
    text = (DATA / "us_strict_valid.toml").read_text()
    short = {**ENV, "SAAS_KEY": "sk_short"}
    report = validate_text(text, registry=registry, environ=short)
    problem = _only(report, "HW030")
    assert problem.rule == "minLength: 16" and problem.value == "***"
    assert "sk_short" not in problem.message


def test_rows_give_region_origin_and_verdict(registry: ConnectorRegistry) -> None:
    report = _validate(registry, "many_problems_us_warn.toml", region="eu")
    rows = {r.id: (r.region, r.region_from, r.residency) for r in report.connectors}
    assert rows == {
        "crm": ("us", "default", "crosses"),
        "analytics": ("eu", "config", "inside"),
        "legacy": ("us", "default", "crosses"),
        "archive": ("us", "config", "crosses"),
    }
    push = _validate(registry, "eu_strict_valid.toml")
    web = next(r for r in push.connectors if r.id == "web")
    assert (web.region, web.region_from, web.residency) == ("eu", "daemon", "inside")
    unknown = _validate(registry, "eu_strict_any_without_region.toml")
    archive = next(r for r in unknown.connectors if r.id == "archive")
    assert (archive.region, archive.residency) == (None, "unknown")


def test_text_output_has_the_table_and_file_lines(registry: ConnectorRegistry) -> None:
    text = render_text(_validate(registry, "many_problems_eu_strict.toml"))
    assert "ID         KIND         CONNECTOR  DIR  REGION        RESIDENCY" in text
    assert "analytics  destination  saas       out  us (default)  crosses (error)" in text
    assert "many_problems_eu_strict.toml:14: HW023 unknown key `retires`" in text
    assert "many_problems_eu_strict.toml:18: HW041" in text
    assert text.endswith("invalid: 5 errors, 1 warning")


def test_lines_are_found_in_inline_tables_and_dotted_keys(registry: ConnectorRegistry) -> None:
    report = _validate(registry, "inline_and_dotted.toml")
    assert _only(report, "HW030").line == 8
    assert _only(report, "HW052").line == 6


def test_unreadable_and_undecodable_files(registry: ConnectorRegistry, tmp_path: Path) -> None:
    folder = validate_file(tmp_path, registry=registry)
    assert folder.exit_code == 2 and folder.errors[0].code == "HW001"
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b'[workspace]\nname = "caf\xe9"\n')
    report = validate_file(binary, registry=registry)
    assert report.exit_code == 1
    assert (report.errors[0].code, report.errors[0].line) == ("HW002", 2)


@pytest.mark.usefixtures("installed_test_plugins")
def test_cli_without_a_config_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "HW001" in result.output and "headwater.toml" in result.output
    conflict = runner.invoke(cli, ["validate", "a.toml", "--config", "b.toml"])
    assert conflict.exit_code == 2
    assert "either as CONFIG or with --config" in conflict.output


def test_embedded_default_config_is_valid_with_the_installed_plugins() -> None:
    registry = load_plugins()
    if "tracking-api" not in registry or "file" not in registry:
        pytest.skip("the default config needs the tracking-api and file connectors")
    report = validate_text(default_config_text(), registry=registry, environ={})
    assert report.exit_code == 0, render_text(report)


@pytest.mark.timeout(60)
def test_real_command_exit_codes_and_json(installed_test_plugins: Path) -> None:
    env = {
        **os.environ,
        **ENV,
        "HEADWATER_PLUGINS": PLUGINS,
        "PYTHONPATH": os.pathsep.join([str(installed_test_plugins), str(HERE)]),
    }
    env.pop("MISSING_KEY", None)
    command = [sys.executable, "-c", "from headwater.cli import main; main()", "validate"]
    good = subprocess.run(
        [*command, str(DATA / "eu_strict_valid.toml")], env=env, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "valid: 0 errors, 0 warnings" in good.stdout
    bad = subprocess.run(
        [*command, str(DATA / "eu_strict_default_region_crosses.toml"), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1, bad.stderr
    assert [p["code"] for p in json.loads(bad.stdout)["errors"]] == ["HW052"]


def test_a_connector_whose_plugin_failed_says_why(registry: ConnectorRegistry) -> None:
    broken = load_plugins(only={"headwater-file"})
    broken.failures.append(
        PluginFailure("mixpanel", "headwater-mixpanel", "plugin 'mixpanel' failed to import: X")
    )
    for name, loaded in registry.connectors.items():
        broken.connectors.setdefault(name, loaded)
    problem = _only(_validate(broken, "connector_not_installed.toml"), "HW021")
    assert "installed but failed to load: plugin 'mixpanel' failed to import: X" in problem.message
