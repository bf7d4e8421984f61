"""A deliberately broken connector fails the conformance suite, with messages saying what
to fix.

The connectors in conformance_cases/broken_connectors.py each break one rule; the module
conformance_cases/broken_suite.py runs the suite on them the way an author would. It runs
in a pytest subprocess (in a temp dir, with only the pytest11 plugin from headwater-spec)
and this test reads the report: every broken rule fails its check with its message, and
the good controls pass every check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "conformance_cases"


class Run:
    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        self.failed = set(re.findall(r"^FAILED broken_suite\.py::(\S+)", output, re.MULTILINE))

    def failed_in(self, cls: str) -> set[str]:
        return {test.split("::", 1)[1] for test in self.failed if test.startswith(cls + "::")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    work = tmp_path_factory.mktemp("broken")
    for name in ("broken_connectors.py", "broken_suite.py"):
        shutil.copy(CASES / name, work / name)
    (work / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "broken_suite.py", "-rf", "--show-capture=no"],
        cwd=work,
        env={**_env(), "PYTHONPATH": str(work)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


pytestmark = pytest.mark.timeout(300)

MAPPING_CHECKS = {
    "test_429_with_retry_after_is_retry_after",
    "test_429_without_retry_after_is_retry",
    "test_5xx_is_retry[500]",
    "test_5xx_is_retry[502]",
    "test_5xx_is_retry[503]",
    "test_4xx_is_rejected[400]",
    "test_4xx_is_rejected[422]",
    "test_timeout_is_retry",
    "test_dropped_connection_is_retry",
    "test_connection_refused_is_retry",
}


def test_the_run_fails_and_its_header_names_the_suite_version(run: Run) -> None:
    from headwater_spec import SPEC_VERSION, __version__

    assert run.returncode == 1, run.output
    assert (
        f"headwater conformance suite {__version__} (checks connector spec_version "
        f"{SPEC_VERSION})" in run.output
    )


def test_good_controls_pass_every_check(run: Run) -> None:
    assert run.failed_in("TestGood") == set(), run.output
    assert run.failed_in("TestCheckpointing") == set(), run.output


def test_spec_without_direction_fails_naming_the_field(run: Run) -> None:
    assert "test_spec_is_valid" in run.failed_in("TestNoDirection")
    assert "'direction' is a required property; add it to the spec" in run.output


def test_sloppy_spec_fails_each_spec_rule_it_breaks(run: Run) -> None:
    assert run.failed_in("TestSloppySpec") == {
        "test_secret_fields_are_marked",
        "test_example_configs_validate_as_declared",
        "test_regions_declare_endpoints",
    }
    assert (
        "config field `api_token` looks like a secret but is not marked; add "
        '`"secret": true` to `config.properties.api_token` in spec.json' in run.output
    )
    assert 'region `eu` has no endpoint; add `"endpoint": "https://..."`' in run.output
    assert "is listed in `examples.invalid` but the config schema accepts it" in run.output


def test_raising_send_fails_every_failure_mapping(run: Run) -> None:
    assert run.failed_in("TestRaising") == MAPPING_CHECKS
    assert "when the service answers 503, send() raised HTTPStatusError" in run.output
    assert "send must never raise for service errors: catch them and return" in run.output


def test_secret_in_repr_logs_and_reasons_is_named(run: Run) -> None:
    assert run.failed_in("TestLeaky") == {
        "test_repr_hides_secrets",
        "test_secrets_not_in_logs_or_errors",
    }
    assert "the secret `api_key` appears in repr() of the instance" in run.output
    assert "the secret `api_key` appears in an outcome's reason (refused (400))" in run.output
    assert (
        "the secret `api_key` appears in a log record of logger "
        "'headwater.connector.conformance-leaky' at DEBUG" in run.output
    )


def test_secret_values_inside_an_object_are_checked_too(run: Run) -> None:
    assert run.failed_in("TestHeaderLeaky") == {
        "test_repr_hides_secrets",
        "test_secrets_not_in_logs_or_errors",
    }
    assert "the secret `headers.Authorization` appears in repr() of the instance" in run.output
    assert (
        "the secret `headers.Authorization` appears in a log record of logger "
        "'headwater.connector.conformance-header-leaky' at INFO" in run.output
    )


def test_wrong_outcome_mapping_is_named(run: Run) -> None:
    assert run.failed_in("TestCareless") == {
        "test_429_with_retry_after_is_retry_after",
        "test_4xx_is_rejected[400]",
        "test_4xx_is_rejected[422]",
    }
    assert (
        "when the service answers 400, send() must return Rejected for every event; it "
        "returned Retry(reason='400', retry_after=None) for 6 of 6 events" in run.output
    )
    assert "pass the header's seconds on: Retry(reason=..., retry_after=7)" in run.output


def test_source_that_checkpoints_apart_from_its_events_fails_the_crash_check(run: Run) -> None:
    assert run.failed_in("TestForgetful") == {"test_resumes_after_crash_without_gaps_or_duplicates"}
    assert (
        "after a crash right after a store, the source emitted 5 events for 4 records "
        "(1 again); store the events and the new position in one step" in run.output
    )


def test_source_without_checkpoint_fails_both_resume_checks(run: Run) -> None:
    assert run.failed_in("TestAmnesiac") == {
        "test_resumes_after_restart_without_gaps_or_duplicates",
        "test_resumes_after_crash_without_gaps_or_duplicates",
    }
    assert "the source never saved a checkpoint" in run.output
