"""Throwaway nats-server processes for tests and benchmarks of the JetStream backend.

Each server gets free loopback ports, its own JetStream store directory and a config file
beside it; a cluster wires three of them with routes on loopback. ``kill`` is SIGKILL, the
crash the tests are about; ``restart`` starts the same server again on the same ports and
store. The binary is ``$HEADWATER_NATS_SERVER``, else ``nats-server`` on PATH, else
``/usr/sbin/nats-server``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


class NatsServerError(RuntimeError):
    """The server binary is missing or the server did not become ready."""


def nats_server_binary() -> str | None:
    configured = os.environ.get("HEADWATER_NATS_SERVER")
    if configured:
        return configured if Path(configured).exists() else None
    found = shutil.which("nats-server")
    if found:
        return found
    return "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """One nats-server with JetStream on loopback."""

    def __init__(
        self,
        store_dir: Path,
        *,
        name: str = "n1",
        cluster: str | None = None,
        routes: list[int] | None = None,
        cluster_port: int | None = None,
    ) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise NatsServerError(
                "nats-server not found; install it or set HEADWATER_NATS_SERVER to its path"
            )
        self.binary = binary
        self.name = name
        self.store_dir = Path(store_dir)
        self.port = free_port()
        self.monitor_port = free_port()
        self.cluster = cluster
        self.cluster_port = cluster_port if cluster_port is not None else free_port()
        self.routes = routes or []
        self.process: subprocess.Popen[bytes] | None = None
        self.config_path = self.store_dir.parent / f"{name}.conf"
        self.log_path = self.store_dir.parent / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            "jetstream {",
            f'  store_dir: "{self.store_dir}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 4GB",
            "}",
        ]
        if self.cluster is not None:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            lines += [
                "cluster {",
                f"  name: {self.cluster}",
                f"  listen: 127.0.0.1:{self.cluster_port}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(lines) + "\n"

    def start(self, wait: float = 20.0, *, ready: bool = True) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if ready:
            self.wait_ready(wait)
        return self

    def wait_ready(self, wait: float = 20.0) -> None:
        """Until the server answers /healthz (JetStream included) or ``wait`` passes."""
        deadline = time.monotonic() + wait
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NatsServerError(f"{self.name} exited; see {self.log_path}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise NatsServerError(f"{self.name} not ready after {wait} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the cluster, no flush."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, wait: float = 20.0) -> None:
        self.stop()
        self.start(wait)


class NatsCluster:
    """Three (or ``size``) clustered nats-servers with JetStream, routes on loopback."""

    def __init__(self, base_dir: Path, size: int = 3, name: str = "hw") -> None:
        self.base_dir = Path(base_dir)
        self.size = size
        self.name = name
        self.servers = self._servers()

    def _servers(self) -> list[NatsServer]:
        """Servers on fresh free ports."""
        cluster_ports = [free_port() for _ in range(self.size)]
        return [
            NatsServer(
                self.base_dir / f"n{i + 1}" / "store",
                name=f"n{i + 1}",
                cluster=self.name,
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(self.size)
        ]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, wait: float = 30.0, attempts: int = 3) -> NatsCluster:
        """Start every node and wait until each is ready. A port picked free can be taken
        before its server binds it (by another process's outgoing connection): then the
        cluster starts again on other ports."""
        for attempt in range(attempts):
            logged = {
                s.name: s.log_path.stat().st_size if s.log_path.exists() else 0
                for s in self.servers
            }
            for server in self.servers:
                server.start(ready=False)
            try:
                for server in self.servers:
                    server.wait_ready(wait)
                return self
            except NatsServerError:
                self.stop()
                taken = any(  # in what this attempt logged (the logs are appended to)
                    b"address already in use" in s.log_path.read_bytes()[logged[s.name] :]
                    for s in self.servers
                    if s.log_path.exists()
                )
                if not taken or attempt == attempts - 1:
                    raise
                self.servers = self._servers()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
