"""The config file as Structs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from ._retention import parse_retention

Residency = Literal["strict", "warn", "off"]
Kind = Literal["source", "destination"]

FRAMEWORK_KEYS: dict[str, str] = {
    "connector": "the connector name (`headwater connectors list`)",
    "region": "the region the instance's data goes to or comes from",
    "events": "event types to deliver (destinations)",
    "sources": "source ids to deliver from (destinations)",
    "start": "`now`, `beginning` or a timestamp: where a new destination starts",
    "enabled": "false keeps the instance configured but stopped",
    "endpoint": "override the region's endpoint (proxies, tests)",
    "max_attempts": "delivery attempts before an event is dead-lettered",
    "max_age": "oldest age (e.g. `24h`, `1h30m`) at which delivery is still retried",
    "concurrency": "parallel delivery lanes (users are spread over them)",
    "rate_limit": "most requests per second to the destination",
    "batch_size": "most events per request (at most the connector's max)",
    "linger_ms": "how long to wait to fill a batch",
}
"""Keys every connector instance may carry beside the connector's own, with their meaning."""


class WorkspaceConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str = "default"
    region: str = "us"
    residency: Residency = "strict"
    data_dir: str = "./headwater-data"
    retention: str | None = None

    def __post_init__(self) -> None:
        parse_retention(self.retention)


class ServerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8080"
    admin_token: str | None = None

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LogConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`[log]`: the embedded LMDB log (default), or NATS JetStream for several daemons.

    The JetStream keys (all but ``backend`` and ``max_size``) are ignored by LMDB; see
    docs/scale.md for what each one means on the NATS side."""

    backend: Literal["lmdb", "jetstream"] = "lmdb"
    max_size: int | None = None
    servers: list[str] = []
    stream: str = "headwater"
    replicas: int = 1
    credentials: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    partitions: int | None = None
    """Partition subjects: the most daemons that can deliver one destination in parallel.
    Unset: the stream's own count (16 for a new stream); set, it must match the stream's."""
    duplicate_window: float = 120.0
    """Seconds during which a re-published messageId is dropped as a duplicate."""
    ack_timeout: float = 30.0
    """Seconds an append waits for JetStream (through a failover) before failing."""

    def __post_init__(self) -> None:
        if self.backend != "jetstream":
            return
        if not self.servers:
            raise ValueError(
                'backend = "jetstream" needs servers, e.g. servers = ["nats://127.0.0.1:4222"]'
            )
        for server in self.servers:
            if "://" not in server:
                raise ValueError(f"server {server!r} needs a scheme: nats://host:4222 or tls://")
        if not 1 <= self.replicas <= 5:
            raise ValueError(f"replicas = {self.replicas}: JetStream allows 1 to 5")
        if self.partitions is not None and not 1 <= self.partitions <= 4096:
            raise ValueError(f"partitions = {self.partitions}: use 1 to 4096")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("tls_key without tls_cert: give both for a client certificate")
        if self.duplicate_window <= 0 or self.ack_timeout <= 0:
            raise ValueError("duplicate_window and ack_timeout are seconds, above 0")


class ConnectorInstance(msgspec.Struct, kw_only=True):
    """One `[sources.<id>]` or `[destinations.<id>]` table, framework keys split out."""

    id: str
    kind: Kind
    connector: str
    options: dict[str, Any] = {}
    region: str | None = None
    events: list[str] | None = None
    sources: list[str] | None = None
    start: str = "now"
    enabled: bool = True
    endpoint: str | None = None
    max_attempts: int | None = None
    max_age: str | None = None
    concurrency: int | None = None
    rate_limit: float | None = None
    batch_size: int | None = None
    linger_ms: int | None = None


class Config(msgspec.Struct, kw_only=True):
    workspace: WorkspaceConfig = msgspec.field(default_factory=WorkspaceConfig)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    sources: dict[str, ConnectorInstance] = {}
    destinations: dict[str, ConnectorInstance] = {}
    path: str | None = None
    """The file the config came from; None for the embedded default."""

    @property
    def data_dir(self) -> Path:
        """The data dir, relative paths taken from the config file's folder."""
        path = Path(self.workspace.data_dir).expanduser()
        if path.is_absolute() or self.path is None:
            return path
        return Path(self.path).parent / path

    def instances(self) -> list[ConnectorInstance]:
        return [*self.sources.values(), *self.destinations.values()]
