"""Run a real `headwater serve` in a subprocess, for tests of anything behind the daemon.

    daemon = DaemonProcess(config_text, tmp_path).start()
    httpx.post(f"{daemon.url}/v1/batch", ...)
    daemon.kill9(); daemon.start()          # crash and restart on the same data dir
    assert daemon.message_ids() == {...}     # read the log as it is on disk

The daemon listens on a free port (``--listen 127.0.0.1:0``) and reports where in
``<data_dir>/serve.json``; ``start`` returns once ``/readyz`` answers 200. Its stdout and
stderr go to files in the work dir, shown in the error when it fails to start. The pytest
fixture ``headwater_daemon`` (root conftest.py) wraps this and stops every daemon it
started. For end-to-end tests of a destination:

    daemon = headwater_daemon(daemon_config(destination_toml, region="eu"), env={...})
    ...                                      # send (headwater.testing_sdk), then
    wait_until(lambda: len(server.events) == 15, describe=lambda: server.events)
    [letter] = daemon.dead_letters("product-analytics")     # via `headwater dlq list`
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

from .daemon import read_runfile
from .log import LmdbLog, LogRecord, RejectedItem

TEST_WRITE_KEY = "test-write-key"
TEST_ADMIN_TOKEN = "test-admin-token"


def daemon_config(
    *tables: str, region: str = "us", write_key: str = TEST_WRITE_KEY, name: str = "test"
) -> str:
    """A config with a workspace in ``region``, the admin token ``TEST_ADMIN_TOKEN`` and one
    tracking-api source `web` taking ``write_key``, followed by ``tables`` (TOML text, such
    as a ``[destinations.<id>]`` table)."""
    base = f"""
[workspace]
name = "{name}"
region = "{region}"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{write_key}"]
"""
    return base + "".join(tables)


TEST_CONFIG = daemon_config()
"""A daemon with one tracking-api source (`web`, key TEST_WRITE_KEY) and no destination."""


def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    describe: Callable[[], object] = lambda: "",
) -> None:
    """Poll ``condition`` until it is true; after ``timeout`` seconds fail with what
    ``describe`` says of the state (what arrived so far, say)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {describe()}")
        time.sleep(interval)


class DaemonStartError(RuntimeError):
    """The daemon exited or did not become ready; the message holds its stderr."""


class DaemonProcess:
    """One `headwater serve` subprocess with its own config file and data dir."""

    def __init__(
        self,
        config_text: str = TEST_CONFIG,
        workdir: str | os.PathLike[str] = ".",
        *,
        env: Mapping[str, str] | None = None,
        listen: str = "127.0.0.1:0",
        startup_timeout: float = 30.0,
        args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "headwater.toml"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.data_dir = self.workdir / "data"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.listen = listen
        self.startup_timeout = startup_timeout
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the daemon is not started")
        return self.process.pid

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"stdout.{self.starts}.log"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"stderr.{self.starts}.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "headwater",
            "serve",
            "--config",
            str(self.config_path),
            "--listen",
            self.listen,
            "--data-dir",
            str(self.data_dir),
            "--log-format",
            "json",
            *self.args,
        ]

    def start(self) -> DaemonProcess:
        """Start (or restart after a stop or kill) and wait until ready."""
        if self.running():
            raise RuntimeError("the daemon is already running")
        self.starts += 1
        self._close_files()
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.workdir,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise DaemonStartError(f"the daemon exited with {code}:\n{self.stderr()}")
            info = read_runfile(self.data_dir)
            if info is not None and info.pid == self.process.pid:
                try:
                    if httpx.get(f"{info.url}/readyz", timeout=2.0).status_code == 200:
                        self.url = info.url
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.kill9()
        raise DaemonStartError(
            f"the daemon was not ready after {self.startup_timeout} s:\n{self.stderr()}"
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no cleanup, no final commit; what is on disk is what survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit code (0 is a clean, graceful stop)."""
        if self.process is None:
            raise RuntimeError("the daemon is not started")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise

    def stop(self) -> None:
        """Terminate if running (kill after a timeout); for fixture teardown."""
        if self.running():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(15.0)
        self._close_files()

    def _close_files(self) -> None:
        for handle in (self._out, self._err):
            if handle is not None:
                handle.close()
        self._out = self._err = None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self) -> str:
        try:
            return self.stdout_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- talking to it -------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 10.0), **kwargs)

    def admin_headers(self, token: str = TEST_ADMIN_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``headwater <args> --config <this daemon's config> --data-dir <its data
        dir>`` (``validate`` takes no data dir) as an operator would, with the daemon's
        environment and work dir; the output is captured as text."""
        where = ["--config", str(self.config_path)]
        if args[:1] != ("validate",):
            where += ["--data-dir", str(self.data_dir)]
        return subprocess.run(
            [sys.executable, "-m", "headwater", *args, *where],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
            env=self.env,
        )

    def dead_letters(
        self, destination: str, *, at_least: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """The dead letters of ``destination`` as `headwater dlq list --format json` shows
        them (the first 10000, the largest page), polled until there are ``at_least`` (or
        ``timeout`` passed: then what there is)."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self.cli(
                "dlq", "list", destination, "--format", "json", "--limit", "10000",
                "--data-dir", str(self.data_dir),
            )  # fmt: skip
            if listed.returncode != 0:
                raise AssertionError(f"`headwater dlq list` failed: {listed.stderr}")
            letters: list[dict[str, Any]] = msgspec.json.decode(listed.stdout)["dead_letters"]
            if len(letters) >= at_least or time.monotonic() > deadline:
                return letters
            time.sleep(0.2)

    # -- reading the log (works while the daemon runs, and after it died) ----------------

    def open_log(self) -> LmdbLog:
        return LmdbLog(self.data_dir, readonly=True)

    def records(self) -> list[LogRecord]:
        with self.open_log() as log:
            return list(log.scan())

    def rejected(self) -> list[RejectedItem]:
        with self.open_log() as log:
            return [item for _, item in log.rejected()]

    def message_ids(self) -> list[str]:
        """The messageId of every stored event, in log order (duplicates kept)."""
        return [str(r.event.get("messageId")) for r in self.records()]

    def events_by_message_id(self) -> dict[str, list[dict[str, Any]]]:
        """Stored events grouped by messageId: a list longer than one is a duplicate."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.records():
            out.setdefault(str(record.event.get("messageId")), []).append(record.event)
        return out

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
