"""The daemon: config, log, plugins, sources, services and the HTTP server, wired together.

Start order: check every instance's options against its connector's spec (a bad config
fails before anything listens), open the log, build the sources (push sources add their
routes), add the daemon's own endpoints, build and start the services, then listen. Stop
order is the reverse: stop listening and drain in-flight requests (each one commits before
it is answered), stop services, close connectors, close the log (its last group commit
completes first).
"""

from __future__ import annotations

import errno
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from headwater_spec import Connector, Source

from .. import __version__
from ..config import Config, ConfigError, ConnectorInstance, check_connector_options
from ..log import AnyLog, open_log
from ..plugins import ConnectorRegistry, load_plugins
from ._context import InstanceContext
from ._endpoints import add_endpoints
from ._http import HttpServer
from ._logging import set_log_secrets
from ._metrics import Metrics
from ._routes import RouteTable
from ._runfile import RunInfo, remove_runfile, write_runfile
from ._services import Service, build_services

State = Literal["created", "starting", "ready", "draining", "stopped"]
DEFAULT_GRACE = 10.0
MIN_BODY_CAP = 64 * 1024


class DaemonError(Exception):
    """The daemon cannot start; the message says what to change."""


class Daemon:
    """One running Headwater process. Services reach everything through it: ``config``,
    ``log``, ``registry``, ``metrics``, ``routes`` (add HTTP routes, admin ones under
    ``/admin/``), ``sources`` and their ``contexts``, and ``make_context`` for the
    destinations they build."""

    def __init__(
        self,
        config: Config,
        *,
        registry: ConnectorRegistry | None = None,
        keepalive_timeout: float = 75.0,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else load_plugins()
        self.metrics = Metrics()
        self.routes = RouteTable(self.metrics, config.server.admin_token)
        self.logger = logging.getLogger("headwater.daemon")
        self.sources: dict[str, Source] = {}
        self.contexts: dict[str, InstanceContext] = {}
        self.services: list[Service] = []
        self.state: State = "created"
        self.url = ""
        self._log: AnyLog | None = None
        self._keepalive_timeout = keepalive_timeout
        self.server: HttpServer | None = None

    @property
    def log(self) -> AnyLog:
        if self._log is None:
            raise RuntimeError("the daemon's log is not open (start() first)")
        return self._log

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    # -- building ------------------------------------------------------------------------

    def effective_region(self, instance: ConnectorInstance) -> str:
        """The instance's region: its own, else its connector's default; a connector that
        serves `any` region is where the workspace is."""
        spec = self.registry.get(instance.connector).spec
        region = instance.region or spec.effective_default_region()
        return self.config.workspace.region if region == "any" else region

    def make_context(self, instance: ConnectorInstance) -> InstanceContext:
        """The context for one configured instance (sources and destinations alike)."""
        return InstanceContext(
            instance_id=instance.id,
            region=self.effective_region(instance),
            data_dir=self.config.data_dir,
            log=self.log,
            metrics=self.metrics,
            endpoint=instance.endpoint,
        )

    def _check_config(self) -> None:
        for failure in self.registry.failures:
            self.logger.warning("plugin not loaded", extra={"fields": {"error": failure.error}})
        specs = {c.name: c.spec.config for c in self.registry}
        check_connector_options(self.config, specs)
        for instance in self.config.sources.values():
            direction = self.registry.get(instance.connector).spec.direction
            if direction != "in":
                raise ConfigError(
                    f"connector {instance.connector!r} is a destination (direction "
                    f"{direction!r}); move it under [destinations]",
                    file=self.config.path,
                    path=f"sources.{instance.id}.connector",
                )

    def register_log_secrets(self) -> None:
        """Mask every secret of the running config in all later log lines (the admin
        token, each instance's secret values, nested ones included); again on reload."""
        token = self.config.server.admin_token
        values = [token] if token else []
        for instance in self.config.instances():
            if instance.connector in self.registry:
                spec = self.registry.get(instance.connector).spec
                values += spec.secret_values(instance.options)
        set_log_secrets(values)

    def _open_log(self) -> AnyLog:
        """LMDB in the data dir, or the JetStream stream several daemons share."""
        return open_log(self.config)

    def _build_sources(self) -> int:
        """Instantiate the enabled sources, mount push routes; return the body cap."""
        cap = MIN_BODY_CAP
        for instance in self.config.sources.values():
            if not instance.enabled:
                continue
            loaded = self.registry.get(instance.connector)
            context = self.make_context(instance)
            source: Connector
            try:
                source = loaded.cls(instance.options, context)
            except Exception as exc:
                error = self.registry.redact(instance.connector, instance.options, str(exc))
                raise DaemonError(
                    f"sources.{instance.id}: connector {instance.connector!r} failed to "
                    f"start: {type(exc).__name__}: {error}"
                ) from None
            if not isinstance(source, Source):
                raise DaemonError(
                    f"sources.{instance.id}: connector {instance.connector!r} is not a Source"
                )
            self.sources[instance.id] = source
            self.contexts[instance.id] = context
            routes = source.routes()
            if routes:
                self.routes.add_routes(routes, owner=f"source:{instance.id}")
                cap = max(cap, source.max_body_bytes())
        return cap

    def _add_gauges(self) -> None:
        log = self.log
        self.metrics.gauge(
            "headwater_log_bytes", "Bytes the log uses on disk", function=lambda: log.stats().bytes
        )
        self.metrics.gauge(
            "headwater_log_events", "Events in the log", function=lambda: log.stats().events
        )
        self.metrics.gauge(
            "headwater_http_connections",
            "Open HTTP connections",
            function=lambda: len(self.server.connections) if self.server else 0,
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Build everything and listen; raise ConfigError, DaemonError, LogError on a bad
        setup (nothing is left running then)."""
        self.state = "starting"
        try:
            self._check_config()
            self.register_log_secrets()
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            self._log = self._open_log()
            body_cap = self._build_sources()
            add_endpoints(self)
            self._add_gauges()
            self.services = build_services(self)
            started: list[Service] = []
            for service in self.services:
                await service.start()
                started.append(service)
            self.server = HttpServer(
                self.routes.dispatch,
                max_body=body_cap,
                keepalive_timeout=self._keepalive_timeout,
                logger=logging.getLogger("headwater.http"),
            )
            host, port = self.config.server.host, self.config.server.port
            try:
                bound_host, bound_port = await self.server.start(host, port)
            except OSError as exc:
                reason = (
                    "the address is in use; stop the other process or change [server] listen"
                    if exc.errno == errno.EADDRINUSE
                    else exc.strerror or str(exc)
                )
                raise DaemonError(f"cannot listen on {host}:{port}: {reason}") from None
        except BaseException:
            await self._close_after_failed_start()
            raise
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown_host}:{bound_port}"
        write_runfile(
            self.config.data_dir,
            RunInfo(
                pid=os.getpid(),
                url=self.url,
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
        self.state = "ready"
        self.logger.info(
            "started",
            extra={
                "fields": {
                    "version": __version__,
                    "url": self.url,
                    "pid": os.getpid(),
                    "config": self.config.path or "(embedded default)",
                    "data_dir": str(self.config.data_dir),
                    "sources": sorted(self.sources),
                    "services": [type(s).__name__ for s in self.services],
                }
            },
        )

    async def _close_after_failed_start(self) -> None:
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                self.logger.exception("service failed to stop")
        await self._close_connectors()
        if self._log is not None:
            self._log.close()
        self.state = "stopped"

    async def _close_connectors(self) -> None:
        for instance_id, source in self.sources.items():
            try:
                await source.close()
            except Exception as exc:
                self.logger.error(
                    "source failed to close",
                    extra={"fields": {"source": instance_id, "error": repr(exc)}},
                )

    def hurry(self) -> None:
        """Cut the drain short (a second signal): open connections are closed now."""
        if self.server is not None:
            self.server.hurry()

    async def stop(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop listening, finish in-flight requests (at most ``grace`` seconds), stop the
        services, close connectors and the log."""
        if self.state in ("stopped", "created"):
            return
        self.state = "draining"
        if self.server is not None:
            await self.server.stop(grace)
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                self.logger.exception(
                    "service failed to stop", extra={"fields": {"service": type(service).__name__}}
                )
        await self._close_connectors()
        if self._log is not None:
            await self._log.aclose()
        remove_runfile(self.config.data_dir, os.getpid())
        self.state = "stopped"
        self.logger.info("stopped", extra={"fields": {"pid": os.getpid()}})
