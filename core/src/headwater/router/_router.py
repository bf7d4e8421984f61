"""The router: one independent delivery loop per configured destination.

It is a daemon service (async ``start``/``stop``). A destination that cannot start (its
connector is not installed, its config is refused) is reported with the reason and the
others run; a destination that is down only grows its own lag. The router asks the log to
tell it about every commit so live events go out at once; without that hook (another log
backend) the loops poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from headwater_spec import ConnectorContext, Destination

from ..config import Config, ConnectorInstance
from ..log import AnyLog
from ..plugins import ConnectorRegistry, UnknownConnectorError
from ._context import InstanceContext
from ._deadletters import PAGE_LIMIT, DeadLetterPage, dead_letter_page, purge_dead_letters
from ._delivery import DeliverySettings, DestinationLoop, StartError
from ._export import MetricsRegistry, RouterMetrics
from ._records import is_paused
from ._settings import SettingsError, delivery_settings, event_filter
from ._status import DestinationStatus, read_status

_log = logging.getLogger("headwater.router")


class UnknownDestinationError(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f"no destination {name!r} in the config (configured: {', '.join(known) or 'none'})"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class Router:
    """Delivers the log to every enabled destination of ``config``."""

    name = "router"

    def __init__(
        self,
        log: AnyLog,
        config: Config,
        registry: ConnectorRegistry,
        *,
        base_settings: DeliverySettings | None = None,
        context_factory: Callable[[ConnectorInstance], ConnectorContext] | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.log = log
        self.config = config
        self.registry = registry
        self.base_settings = base_settings
        self.context_factory = context_factory
        self.metrics = RouterMetrics(metrics) if metrics is not None else None
        self.loops: dict[str, DestinationLoop] = {}
        self.errors: dict[str, str] = {}
        self._unlisten: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._refresher: asyncio.Task[None] | None = None

    def _build(self, instance: ConnectorInstance) -> DestinationLoop:
        loaded = self.registry.get(instance.connector)
        spec = loaded.spec
        if spec.direction != "out" or not issubclass(loaded.cls, Destination):
            raise SettingsError(
                f"`destinations.{instance.id}.connector`: {instance.connector!r} is a source "
                "connector; configure it under [sources]"
            )
        context: ConnectorContext
        if self.context_factory is not None:
            context = self.context_factory(instance)
        else:
            region = instance.region or spec.effective_default_region()
            context = InstanceContext(instance.id, region, self.config.data_dir, instance.endpoint)
        connector = loaded.cls(instance.options, context)
        assert isinstance(connector, Destination)
        return DestinationLoop(
            self.log,
            instance.id,
            connector,
            connector_name=instance.connector,
            event_filter=event_filter(instance, spec),
            settings=delivery_settings(instance, spec, base=self.base_settings),
        )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        for instance in self.config.destinations.values():
            if instance.enabled and not is_paused(self.log, instance.id):
                await self.start_destination(instance)
        listen = getattr(self.log, "add_commit_listener", None)
        if listen is not None:
            self._unlisten = listen(self.notify)
        if self.metrics is not None:
            self._refresher = asyncio.create_task(
                self.metrics.run(self.loops.values()), name="hw-router-metrics"
            )

    async def start_destination(self, instance: ConnectorInstance) -> DestinationLoop | None:
        """Build and start one destination: at start, and when a reload adds or changes it
        or it is resumed. A destination that cannot start is kept in ``errors``."""
        self.errors.pop(instance.id, None)
        try:
            loop = self._build(instance)
            await loop.start()
        except (UnknownConnectorError, SettingsError, StartError, ValueError, TypeError) as exc:
            error = self.registry.redact(instance.connector, instance.options, str(exc))
            self.errors[instance.id] = error
            _log.error(
                "destination %s not started: %s",
                instance.id,
                error,
                extra={"fields": {"destination": instance.id}},
            )
            return None
        self.loops[instance.id] = loop
        if self.metrics is not None:
            self.metrics.bind(loop)
        return loop

    async def stop_destination(self, destination: str) -> bool:
        """Stop one destination's loop (in-flight sends are abandoned and re-sent when it
        starts again; its cursor, retries and dead letters stay in the log)."""
        self.errors.pop(destination, None)
        loop = self.loops.pop(destination, None)
        if loop is None:
            return False
        with contextlib.suppress(Exception):
            await loop.stop()
        return True

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        for loop in list(self.loops.values()):
            with contextlib.suppress(Exception):
                await loop.stop()
        self.loops.clear()

    def notify(self, *_: object) -> None:
        """New events were committed; safe to call from any thread."""
        if threading.get_ident() == self._thread:
            self._wake()
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for loop in self.loops.values():
            loop.notify()

    # -- for the admin API and the CLI -------------------------------------------------

    def instance(self, destination: str) -> ConnectorInstance:
        try:
            return self.config.destinations[destination]
        except KeyError:
            raise UnknownDestinationError(destination, self.config.destinations) from None

    def status(self) -> list[DestinationStatus]:
        out = []
        for instance in self.config.destinations.values():
            loop = self.loops.get(instance.id)
            if loop is not None:
                out.append(loop.status())
            else:
                if not instance.enabled:
                    state = "disabled"
                elif is_paused(self.log, instance.id):
                    state = "paused"
                else:
                    state = "failed"
                out.append(
                    read_status(
                        self.log,
                        instance.id,
                        connector=instance.connector,
                        enabled=instance.enabled,
                        state=state,
                        error=self.errors.get(instance.id),
                    )
                )
        return out

    def dead_letters(
        self, destination: str, *, limit: int = PAGE_LIMIT, after: int | None = None
    ) -> DeadLetterPage:
        """One page of the destination's dead letters (reads the log only: any thread)."""
        self.instance(destination)
        return dead_letter_page(self.log, destination, limit=limit, after=after)

    def redrive(self, destination: str) -> int:
        """Start re-queueing the destination's dead letters (it must be running; in
        chunks as it has room); return how many there are."""
        self.instance(destination)
        loop = self.loops.get(destination)
        if loop is None:
            raise StartError(f"destination {destination!r} is not running; nothing redriven")
        return loop.redrive()

    def purge(self, destination: str) -> int:
        """Delete the destination's dead letters recorded up to now, a chunk per write,
        whether or not it runs (the router keeps no dead letter in memory). Reads and
        writes the log only: the admin API calls it from a worker thread."""
        self.instance(destination)
        return purge_dead_letters(self.log, destination)

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir
