"""The table: each config under data/ with its expected exit code and problem codes.

Every config runs through the real `headwater validate` command (in-process), in JSON and
in text, with the test connectors installed as a distribution. Problem codes are compared
as sorted lists, so a config with several problems must report every one of them.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import check_connector_options, load_config
from headwater.plugins import ConnectorRegistry

from .conftest import DATA, ENV, SECRETS

E = tuple[str, ...]

# file, extra args, exit code, error codes, warning codes
CASES: list[tuple[str, tuple[str, ...], int, E, E]] = [
    # good configs, US and EU
    ("us_strict_valid.toml", (), 0, (), ()),
    ("eu_strict_valid.toml", (), 0, (), ()),
    ("eu_strict_endpoint_same_region.toml", (), 0, (), ()),
    ("env_defaults.toml", (), 0, (), ()),
    # residency: effective region (config or connector default) outside the workspace
    ("eu_strict_default_region_crosses.toml", (), 1, ("HW052",), ()),
    ("eu_warn_default_region_crosses.toml", (), 0, (), ("HW052",)),
    ("eu_off_default_region_crosses.toml", (), 0, (), ()),
    ("us_strict_eu_destination.toml", (), 1, ("HW052",), ()),
    ("us_warn_eu_destination.toml", (), 0, (), ("HW052",)),
    ("eu_strict_any_region_us.toml", (), 1, ("HW052",), ()),
    ("eu_strict_pull_source_default_us.toml", (), 1, ("HW052",), ()),
    # residency: the connector serves no region matching the workspace
    ("eu_strict_us_only_connector.toml", (), 1, ("HW053",), ()),
    ("eu_warn_us_only_connector.toml", (), 0, (), ("HW053",)),
    ("eu_off_us_only_connector.toml", (), 0, (), ()),
    ("us_strict_global_connector.toml", (), 1, ("HW053",), ()),
    # residency: endpoint override host of another region
    ("eu_strict_endpoint_us_host.toml", (), 1, ("HW054",), ()),
    ("us_strict_endpoint_eu_pattern.toml", (), 1, ("HW054",), ()),
    # residency: unknown region of an `any` connector
    ("eu_strict_any_without_region.toml", (), 0, (), ("HW055",)),
    ("eu_off_any_without_region.toml", (), 0, (), ()),
    # --region: the same file judged as if deployed elsewhere
    ("us_strict_valid.toml", ("--region", "eu"), 1, ("HW052",), ()),
    ("eu_strict_valid.toml", ("--region", "us"), 1, ("HW052", "HW052", "HW052"), ()),
    ("eu_strict_default_region_crosses.toml", ("--region", "us"), 0, (), ()),
    ("us_strict_valid.toml", ("--region", "mars"), 2, ("HW003",), ()),
    # keys, connectors, direction
    ("typo_unknown_key.toml", (), 1, ("HW023",), ()),
    ("unknown_section_and_keys.toml", (), 1, ("HW010", "HW011"), ()),
    ("connector_not_installed.toml", (), 1, ("HW021",), ()),
    ("connector_typo.toml", (), 1, ("HW021",), ()),
    ("direction_mismatch.toml", (), 1, ("HW022", "HW022"), ()),
    ("missing_connector_key.toml", (), 1, ("HW020",), ()),
    ("not_a_table.toml", (), 1, ("HW013", "HW013"), ()),
    ("destination_key_on_source.toml", (), 1, ("HW025", "HW025"), ()),
    # values: connector options and framework keys
    ("option_schema_errors.toml", (), 1, ("HW030", "HW030", "HW030"), ()),
    ("missing_required_option.toml", (), 1, ("HW031",), ()),
    ("invalid_framework_keys.toml", (), 1, ("HW024", "HW024", "HW024", "HW024"), ()),
    ("invalid_framework_sections.toml", (), 1, ("HW012", "HW012", "HW012"), ()),
    ("instance_region_not_served.toml", (), 1, ("HW051",), ()),
    ("unknown_workspace_region.toml", (), 1, ("HW050",), ()),
    ("inline_and_dotted.toml", (), 1, ("HW030",), ("HW052",)),
    # secrets and environment
    ("secret_literal.toml", (), 0, (), ("HW040",)),
    ("secret_literal_breaks_pattern.toml", (), 1, ("HW030",), ("HW040", "HW040")),
    ("admin_token_literal.toml", (), 0, (), ("HW040",)),
    ("missing_env.toml", (), 1, ("HW041",), ()),
    ("missing_env.toml", ("--allow-missing-env",), 0, (), ("HW041",)),
    # topology
    ("no_sources.toml", (), 1, ("HW060",), ()),
    ("only_disabled_source.toml", (), 1, ("HW060",), ()),
    ("unknown_source_filter.toml", (), 1, ("HW061",), ()),
    ("unreachable_by_event_types.toml", (), 0, (), ("HW062",)),
    ("unreachable_disabled_filter.toml", (), 0, (), ("HW062",)),
    ("no_destinations.toml", (), 0, (), ("HW063",)),
    # file problems
    ("invalid_toml.toml", (), 1, ("HW002",), ()),
    ("does_not_exist.toml", (), 2, ("HW001",), ()),
    # several problems at once
    (
        "many_problems_eu_strict.toml",
        (),
        1,
        ("HW023", "HW041", "HW052", "HW053", "HW061"),
        ("HW040",),
    ),
    ("many_problems_us_warn.toml", (), 0, (), ("HW040", "HW052", "HW062")),
    (
        "many_problems_us_warn.toml",
        ("--region", "eu"),
        0,
        (),
        ("HW040", "HW052", "HW052", "HW053", "HW062"),
    ),
]

UNSET = {"MISSING_KEY": None, "HW_REGION": None, "HW_DATA": None, "UNSET_WRITE_KEY": None}


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env={**ENV, **UNSET})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_table_covers_every_data_file_and_at_least_30_configs() -> None:
    files = {p.name for p in DATA.glob("*.toml")}
    named = {case[0] for case in CASES}
    assert files <= named, f"configs without an expectation: {sorted(files - named)}"
    assert len(files) >= 30


@pytest.mark.usefixtures("installed_test_plugins")
@pytest.mark.parametrize(
    ("name", "args", "exit_code", "errors", "warnings"),
    CASES,
    ids=[f"{c[0]}{' '.join(('', *c[1]))}" for c in CASES],
)
def test_config_table(
    name: str, args: tuple[str, ...], exit_code: int, errors: E, warnings: E
) -> None:
    path = str(DATA / name)
    code, out = _run(["validate", path, "--format", "json", *args])
    report = json.loads(out)
    assert sorted(p["code"] for p in report["errors"]) == sorted(errors), out
    assert sorted(p["code"] for p in report["warnings"]) == sorted(warnings), out
    assert code == exit_code
    assert report["valid"] is (not errors)
    for problem in report["errors"] + report["warnings"]:
        assert set(problem) >= {"path", "message", "severity", "code"}
        assert problem["severity"] == ("error" if problem in report["errors"] else "warning")

    text_code, text = _run(["validate", path, *args])
    assert text_code == exit_code
    for problem in report["errors"] + report["warnings"]:
        assert problem["code"] in text
    for secret in SECRETS:
        assert secret not in out
        assert secret not in text


def test_every_problem_code_of_the_catalogue_is_exercised_by_the_table() -> None:
    from headwater.validation import CODES

    seen = {code for case in CASES for code in (*case[3], *case[4])}
    # HW070/HW071 need a live service: test_validate_check.py covers them.
    assert set(CODES) - seen == {"HW070", "HW071"}


@pytest.mark.parametrize(
    "name", sorted({c[0] for c in CASES if c[2] == 0 and not c[1]}), ids=lambda n: n
)
def test_a_valid_config_is_one_the_daemon_loads(name: str, registry: ConnectorRegistry) -> None:
    """validate must never pass a config the loader would refuse."""
    config = load_config(DATA / name, environ=ENV)
    check_connector_options(config, {c.name: c.spec.config for c in registry})
