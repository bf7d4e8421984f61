"""`--check`: each connector's check() against a real HTTP server on loopback, with a
timeout, skipped instances, and secrets scrubbed from what services and exceptions say."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.plugins import ConnectorRegistry
from headwater.validation import render_text, validate_file

CHECK_TIMEOUT = 3.0
"""Long enough for a loaded 2-core machine to make four loopback requests; the slow
endpoint answers after 10 s."""
GOOD_KEY = "sk_good_key_0123456789"
WRONG_KEY = "sk_wrong_key_9876543210"


class _Service(BaseHTTPRequestHandler):
    """The check endpoint of the `saas` test connector: 200 for the good key, 401 for
    another, 500 under /broken, and a reply too late under /slow."""

    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            time.sleep(10)
        if self.path.startswith("/broken/"):
            status = 500
        elif self.headers.get("Authorization") == f"Bearer {GOOD_KEY}":
            status = 200
        else:
            status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "headwater.toml"
    path.write_text(
        f"""
[workspace]
region = "us"

[sources.web]
connector = "collector"
write_keys = ["${{WRITE_KEY}}"]

[destinations.ok]
connector = "saas"
endpoint = "{base}"
api_key = "${{GOOD_KEY}}"

[destinations.refused]
connector = "saas"
endpoint = "{base}"
api_key = "${{WRONG_KEY}}"

[destinations.broken]
connector = "saas"
endpoint = "{base}/broken"
api_key = "${{GOOD_KEY}}"

[destinations.slow]
connector = "saas"
endpoint = "{base}/slow"
api_key = "${{GOOD_KEY}}"

[destinations.invalid]
connector = "saas"
endpoint = "{base}"
api_key = "${{GOOD_KEY}}"
retries = 99

[destinations.off]
connector = "saas"
enabled = false
endpoint = "{base}"
api_key = "${{GOOD_KEY}}"
"""
    )
    return path


ENV = {"GOOD_KEY": GOOD_KEY, "WRONG_KEY": WRONG_KEY, "WRITE_KEY": "wk_check_test_1"}


@pytest.mark.timeout(30)
def test_check_reports_each_connector_and_never_a_secret(
    registry: ConnectorRegistry, service: str, tmp_path: Path
) -> None:
    report = validate_file(
        _config(tmp_path, service),
        registry=registry,
        environ=ENV,
        check=True,
        check_timeout=CHECK_TIMEOUT,
    )
    checks = {row.id: row.check for row in report.connectors}
    assert checks == {
        "web": "ok",
        "ok": "ok",
        "refused": "failed",
        "broken": "failed",
        "slow": "timeout",
        "invalid": "skipped",
        "off": "skipped",
    }
    by_path = {(p.code, p.path) for p in report.errors}
    assert by_path == {
        ("HW070", "destinations.refused"),
        ("HW070", "destinations.broken"),
        ("HW071", "destinations.slow"),
        ("HW030", "destinations.invalid.retries"),
    }
    refused = next(p for p in report.errors if p.path == "destinations.refused")
    assert "the service refused API key ***" in refused.message
    broken = next(p for p in report.errors if p.path == "destinations.broken")
    assert "RuntimeError: service answered 500 for key ***" in broken.message
    output = json.dumps(report.to_builtins()) + render_text(report)
    assert GOOD_KEY not in output and WRONG_KEY not in output
    assert report.exit_code == 1


def test_without_check_nothing_is_contacted(
    registry: ConnectorRegistry, service: str, tmp_path: Path
) -> None:
    report = validate_file(_config(tmp_path, service), registry=registry, environ=ENV)
    assert all(row.check is None for row in report.connectors)
    assert [p.code for p in report.errors] == ["HW030"]


@pytest.mark.timeout(30)
@pytest.mark.usefixtures("installed_test_plugins")
def test_cli_check_flag_and_timeout(service: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "validate",
            str(_config(tmp_path, service)),
            "--check",
            "--check-timeout",
            str(CHECK_TIMEOUT),
        ],
        env=ENV,
    )
    assert result.exit_code == 1
    assert "CHECK" in result.stdout and "timeout" in result.stdout
    assert "HW071" in result.stdout and "took longer than 3s" in result.stdout
    assert GOOD_KEY not in result.output and WRONG_KEY not in result.output
