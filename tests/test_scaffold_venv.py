"""`headwater init connector` end to end, the way a third party would use it.

A destination and a source are generated into a temp dir and installed, as built wheels, in
a fresh virtualenv beside the workspace's headwater-spec, headwater and tracking-api (from
their local paths; nothing of the workspace environment leaks in). There:
- each generated package's own tests pass (the conformance suite, loaded through the
  pytest11 entry point of the installed headwater-spec);
- the daemon of that venv lists both connectors;
- `headwater serve` configured with the destination delivers events sent to its tracking
  API to a loopback server playing the service;
- `headwater serve` configured with the source stores the records it pulls from a loopback
  server playing the service's API, each exactly once.

The venv is built once for the module (a few seconds with uv's cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from headwater.scaffold import scaffold
from headwater_spec.conformance import RecordedRequest, Reply, ServiceServer

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"
API_KEY = "hw-kit-api-key-0042"
NETWORK_HINTS = ("network", "connect", "dns", "offline", "timed out", "resolve")

pytestmark = pytest.mark.timeout(600)


class Kit(msgspec.Struct):
    root: Path
    python: Path
    out_dir: Path
    in_dir: Path

    @property
    def bin(self) -> Path:
        return self.python.parent

    def env(self) -> dict[str, str]:
        """The environment of the venv: no workspace venv, no pytest internals."""
        drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_", "UV_PROJECT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.python.parent.parent)
        return env


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    uv = shutil.which("uv")
    if uv is None:
        message = "uv is not installed; it creates the fresh venv"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("kit")
    out_dir, in_dir = root / "headwater-acme-out", root / "headwater-acme-in"
    scaffold("acme-out", "out", ["us", "eu"], out_dir)
    scaffold("acme-in", "in", [], in_dir)
    venv = root / "venv"
    made = _run([uv, "venv", "-q", "--python", sys.executable, str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    packages = [
        str(ROOT / "connector_spec"),
        str(ROOT / "core"),
        str(ROOT / "plugins" / "tracking-api"),
        f"{out_dir}[test]",
        f"{in_dir}[test]",
    ]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    installed = _run(
        [uv, "pip", "install", "-q", "--no-sources", "--python", str(python), *packages], env=env
    )
    if installed.returncode != 0:
        text = installed.stderr.lower()
        if not REQUIRE and any(hint in text for hint in NETWORK_HINTS):
            pytest.skip(f"cannot install into a fresh venv here: {installed.stderr[-500:]}")
        pytest.fail(f"installing the generated packages failed:\n{installed.stderr}")
    return Kit(root, python, out_dir, in_dir)


@pytest.mark.parametrize("which", ["out_dir", "in_dir"])
def test_generated_package_passes_its_own_tests_in_a_fresh_venv(kit: Kit, which: str) -> None:
    folder: Path = getattr(kit, which)
    result = _run(
        [str(kit.python), "-m", "pytest", "-p", "no:cacheprovider", "-rs"],
        cwd=folder,
        env=kit.env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "headwater conformance suite 0.1.0 (checks connector spec_version 1)" in output
    assert " passed" in output and "failed" not in output, output
    installed = _run(
        [str(kit.python), "-c", "import headwater_spec; print(headwater_spec.__file__)"],
        cwd=kit.root,
        env=kit.env(),
    )
    assert str(ROOT) not in installed.stdout, "headwater-spec must come from the venv's wheel"


def test_fresh_venv_daemon_lists_the_generated_connectors(kit: Kit) -> None:
    result = _run(
        [str(kit.bin / "headwater"), "connectors", "list", "--format", "json"],
        cwd=kit.root,
        env=kit.env(),
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["acme-out"]["direction"] == "out"
    assert rows["acme-out"]["regions"] == ["us", "eu"]
    assert rows["acme-out"]["distribution"] == "headwater-acme-out"
    assert rows["acme-in"]["direction"] == "in"
    assert rows["acme-in"]["regions"] == ["global"]


@pytest.fixture
def service() -> Iterator[ServiceServer]:
    with ServiceServer() as server:
        yield server


def _daemon(kit: Kit, config: str, workdir: Path) -> Any:
    try:
        from headwater.testing import DaemonProcess
    except ImportError:
        pytest.skip("daemon not available yet (headwater.testing)")

    class VenvDaemon(DaemonProcess):
        """`headwater serve` run by the fresh venv's interpreter."""

        def command(self) -> list[str]:
            return [str(kit.python), *super().command()[1:]]

    env = kit.env()
    return VenvDaemon(config, workdir, env=env)


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def test_daemon_delivers_events_to_the_generated_destination(
    kit: Kit, service: ServiceServer, tmp_path: Path
) -> None:
    config = f"""
[workspace]
name = "kit"
region = "eu"

[sources.web]
connector = "tracking-api"
write_keys = ["kit-write-key"]

[destinations.crm]
connector = "acme-out"
region = "eu"
api_key = "${{ACME_KEY}}"
endpoint = "{service.url}"
linger_ms = 10
"""
    daemon = _daemon(kit, config, tmp_path / "out")
    daemon.env["ACME_KEY"] = API_KEY
    batch = [
        {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "kit-1"},
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "kit-2"},
        {"type": "page", "anonymousId": "a9", "name": "Home", "messageId": "kit-3"},
    ]
    with daemon:
        answer = httpx.post(
            f"{daemon.url}/v1/batch", json={"batch": batch}, auth=("kit-write-key", ""), timeout=10
        )
        assert answer.status_code == 200, answer.text

        def delivered() -> set[str]:
            return {
                ev["messageId"]
                for r in service.received()
                if r.path == "/v1/events"
                for ev in r.json()["events"]
            }

        _wait(lambda: delivered() >= {"kit-1", "kit-2", "kit-3"}, 30, "the three events")
    request = next(r for r in service.received() if r.path == "/v1/events")
    assert request.header("authorization") == f"Bearer {API_KEY}"
    assert API_KEY not in daemon.stdout() + daemon.stderr()


def test_daemon_stores_events_pulled_by_the_generated_source(
    kit: Kit, service: ServiceServer, tmp_path: Path
) -> None:
    records = [
        {"id": f"r{n}", "user_id": f"user-{n}", "event": "Row Added", "properties": {"n": n}}
        for n in range(5)
    ]

    def serve(request: RecordedRequest) -> Reply:
        if request.header("authorization") != f"Bearer {API_KEY}":
            return Reply.json({"error": "unauthorized"}, 401)
        params = request.params()
        start, limit = int(params.get("after") or 0), int(params.get("limit") or 100)
        page = records[start : start + limit]
        end = start + len(page)
        return Reply.json({"events": page, "cursor": str(end), "has_more": end < len(records)})

    service.handler = serve
    config = f"""
[workspace]
name = "kit"
region = "us"

[sources.feed]
connector = "acme-in"
api_key = "{API_KEY}"
poll_interval = 0.1
page_size = 2
endpoint = "{service.url}"
"""
    daemon = _daemon(kit, config, tmp_path / "in")
    expected = [f"acme-in-r{n}" for n in range(5)]
    with daemon:
        _wait(lambda: len(daemon.message_ids()) >= 5, 30, "five pulled events in the log")
        daemon.terminate()
        daemon.start()
        records.append({"id": "r5", "user_id": "user-5", "event": "Row Added"})
        _wait(lambda: len(daemon.message_ids()) >= 6, 30, "the record added after a restart")
        time.sleep(0.3)
    assert daemon.message_ids() == [*expected, "acme-in-r5"]
    assert API_KEY not in daemon.stdout() + daemon.stderr()
