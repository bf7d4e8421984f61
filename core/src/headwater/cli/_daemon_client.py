"""Talking to the running daemon of a data dir from the CLI: where it listens (its
``serve.json``), and its admin API with the configured bearer token."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from ..config import Config
from ..daemon import read_runfile
from ..router._status import pid_alive
from ._common import fail

TIMEOUT = 30.0


class RunningDaemon(msgspec.Struct, frozen=True):
    pid: int
    url: str


def running_daemon(config: Config) -> RunningDaemon | None:
    """The daemon serving this config's data dir, if one runs."""
    info = read_runfile(config.data_dir)
    if info is None or not pid_alive(info.pid):
        return None
    return RunningDaemon(pid=info.pid, url=info.url)


class AdminClient:
    def __init__(self, daemon: RunningDaemon, token: str) -> None:
        self.daemon = daemon
        self._client = httpx.Client(
            base_url=daemon.url,
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body); exits with a message when the daemon is unreachable."""
        try:
            response = self._client.request(
                method, path, content=msgspec.json.encode(body) if body is not None else None
            )
        except httpx.HTTPError as exc:
            fail(f"the daemon (pid {self.daemon.pid}) at {self.daemon.url} did not answer: {exc}")
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = {"message": response.text}
        if response.status_code in (401, 403):
            message = data.get("message") if isinstance(data, dict) else response.text
            fail(f"the daemon refused the admin token: {message}")
        return response.status_code, data

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def admin_client(config: Config, daemon: RunningDaemon) -> AdminClient:
    token = config.server.admin_token
    if not token:
        fail(
            f"a daemon runs (pid {daemon.pid}) but [server] admin_token is not set in the "
            "config, so the CLI cannot use its admin API; set it (e.g. "
            'admin_token = "${HEADWATER_ADMIN_TOKEN}") and restart the daemon'
        )
    return AdminClient(daemon, token)


def error_text(data: Any) -> str:
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return str(data)
