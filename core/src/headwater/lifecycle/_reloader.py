"""Connection changes while the daemon runs: reload the config, pause and resume
destinations.

A reload (SIGHUP, `headwater reload`, ``POST /admin/reload``) re-reads the daemon's config
file and validates it with the same checks as `headwater validate` plus the loader's; any
error refuses the reload with the errors and leaves the running pipeline exactly as it was.
New and changed sources are built before anything is touched, so a source that fails to
construct refuses the reload too. Then, in order:

1. sources: removed ones stop taking requests (their routes go; a pull source's task is
   cancelled) and are closed; changed ones are replaced; added ones start;
2. destinations: removed ones stop (in-flight sends are abandoned and would be sent again
   if the destination came back; cursor, retries and dead letters stay in the log until
   `headwater destinations forget`); changed ones restart with the new table from their
   cursor; added ones start at their ``start`` (``now`` by default, ``beginning``, or a
   time) unless the log already has a cursor for that id;
3. replay jobs of a changed, removed or added destination restart or wait accordingly.

Requests in flight on a removed source finish (their handler already runs); ingestion never
stops during a reload. Reloads run one at a time.

Pausing writes a flag in the log (see _state.py) and stops the destination's loop; this
service also polls the flags every second, so `headwater destinations pause` works without
the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from headwater_spec import Connector, Destination, Source

from ..config import Config, ConfigError, check_connector_options, load_config
from ..plugins import UnknownConnectorError
from ..retention import policy_of
from ..router import Router, delivery_settings, event_filter
from ..router._records import is_paused
from ..validation import Problem, validate_file
from ._diff import ConfigChanges, diff_configs, with_running_settings
from ._state import paused_destinations, set_paused

if TYPE_CHECKING:
    from ..daemon import Daemon, InstanceContext
    from ..daemon._pull import PullSourceRunner
    from ..replay import ReplayService

_log = logging.getLogger("headwater.reload")
POLL_FLAGS = 1.0


class ReloadResult(msgspec.Struct, kw_only=True):
    applied: bool
    file: str | None
    trigger: str
    changes: ConfigChanges | None = None
    errors: list[str] = []
    """Why the reload was refused; or, when applied, what failed to start afterwards."""
    warnings: list[str] = []


class ReloadRefused(Exception):
    def __init__(self, errors: list[str], warnings: list[str] | None = None) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.warnings = warnings or []


class Reloader:
    name = "reload"

    def __init__(
        self,
        daemon: Daemon,
        *,
        router: Router | None,
        replay: ReplayService | None,
        pull: PullSourceRunner | None,
        poll_interval: float = POLL_FLAGS,
    ) -> None:
        self.daemon = daemon
        self.router = router
        self.replay = replay
        self.pull = pull
        self.poll_interval = poll_interval
        self.started_from: Config | None = None
        self.paused: set[str] = set()
        self.reloads = daemon.metrics.counter(
            "headwater_config_reloads_total", "Config reloads, by outcome", ("outcome",)
        )
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._signal_tasks: set[asyncio.Task[ReloadResult]] = set()
        self._sighup = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        path = self.daemon.config.path
        if path is not None:
            with contextlib.suppress(ConfigError):
                self.started_from = load_config(path)
        destinations = list(self.daemon.config.destinations)
        self.paused = paused_destinations(self.daemon.log, destinations)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup = True
        except (NotImplementedError, RuntimeError, ValueError):
            _log.info("SIGHUP reload not available here (not the main thread)")
        if self.router is not None:  # on JetStream, shared delivery reads the flags itself
            self._watcher = asyncio.create_task(self._watch_flags(), name="hw-pause-flags")

    async def stop(self) -> None:
        if self._sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for task in list(self._signal_tasks):
            with contextlib.suppress(Exception):
                await task

    def _on_sighup(self) -> None:
        _log.info("SIGHUP: reloading the config")
        task = asyncio.get_running_loop().create_task(self.reload(trigger="SIGHUP"))
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)

    # -- reload ------------------------------------------------------------------------

    async def reload(self, *, trigger: str = "api") -> ReloadResult:
        async with self._lock:
            file = self.daemon.config.path
            try:
                result = await self._reload(trigger)
            except ReloadRefused as refused:
                self.reloads.labels("refused").inc()
                _log.error(
                    "reload refused; the running config stays",
                    extra={"fields": {"trigger": trigger, "errors": refused.errors}},
                )
                return ReloadResult(
                    applied=False,
                    file=file,
                    trigger=trigger,
                    errors=refused.errors,
                    warnings=refused.warnings,
                )
            self.reloads.labels("applied").inc()
            return result

    async def _reload(self, trigger: str) -> ReloadResult:
        daemon = self.daemon
        running = daemon.config
        if running.path is None:
            raise ReloadRefused(
                [
                    "the daemon runs with the embedded default config; there is no file to "
                    "reload. Start it with --config headwater.toml to change connections live"
                ]
            )
        new, warnings = await asyncio.to_thread(self._load_and_validate, running.path)
        changes = diff_configs(running, new, started_from=self.started_from)
        new = with_running_settings(new, running)
        built = self._build_sources(new, changes)
        self._check_destinations(new, changes)
        if changes.restart_needed:
            warnings.append(
                "changed but applied only at the next restart: " + ", ".join(changes.restart_needed)
            )
        if self.router is None and not changes.destinations.empty:
            warnings.append(
                "destination changes on the JetStream backend apply when the daemons restart"
            )
        # -- nothing was touched so far; from here on the new config is applied ----------
        daemon.config = new
        daemon.register_log_secrets()
        if self.router is not None:
            self.router.config = new
        token = new.server.admin_token
        daemon.routes.admin_token = token.encode() if token else None
        errors: list[str] = []
        await self._apply_sources(new, changes, built)
        if self.router is not None:
            errors += await self._apply_destinations(new, changes)
        _log.info(
            "config reloaded",
            extra={
                "fields": {
                    "trigger": trigger,
                    "sources": msgspec.to_builtins(changes.sources),
                    "destinations": msgspec.to_builtins(changes.destinations),
                    "warnings": warnings,
                    "errors": errors,
                }
            },
        )
        return ReloadResult(
            applied=True,
            file=running.path,
            trigger=trigger,
            changes=changes,
            errors=errors,
            warnings=warnings,
        )

    def _load_and_validate(self, path: str) -> tuple[Config, list[str]]:
        """The checks of `headwater validate`, then the loader's (run in a thread: schema
        validation takes a few milliseconds per connector)."""
        report = validate_file(path, registry=self.daemon.registry)
        errors = [_problem_text(p) for p in report.errors]
        warnings = [_problem_text(p) for p in report.warnings]
        if errors:
            raise ReloadRefused(errors, warnings)
        try:
            config = load_config(Path(path))
            specs = {c.name: c.spec.config for c in self.daemon.registry}
            check_connector_options(config, specs)
            policy_of(config)
        except ConfigError as exc:
            raise ReloadRefused([str(exc)], warnings) from None
        return config, warnings

    def _build_sources(
        self, new: Config, changes: ConfigChanges
    ) -> dict[str, tuple[Source, InstanceContext]]:
        """Construct the added and changed sources (nothing is mounted yet)."""
        built: dict[str, tuple[Source, InstanceContext]] = {}
        errors: list[str] = []
        for instance_id in [*changes.sources.added, *changes.sources.changed]:
            instance = new.sources[instance_id]
            if not instance.enabled:
                continue
            try:
                loaded = self.daemon.registry.get(instance.connector)
                context = self.daemon.make_context(instance)
                source: Connector = loaded.cls(instance.options, context)
            except Exception as exc:
                error = self.daemon.registry.redact(instance.connector, instance.options, str(exc))
                errors.append(
                    f"sources.{instance_id}: connector {instance.connector!r} failed to start: "
                    f"{type(exc).__name__}: {error}"
                )
                continue
            if not isinstance(source, Source):
                errors.append(f"sources.{instance_id}: {instance.connector!r} is not a source")
                continue
            built[instance_id] = (source, context)
        if errors:
            for source, _context in built.values():
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().create_task(source.close())
            raise ReloadRefused(errors)
        return built

    def _check_destinations(self, new: Config, changes: ConfigChanges) -> None:
        """The router's own checks of the added and changed destinations' framework keys."""
        errors: list[str] = []
        for instance_id in [*changes.destinations.added, *changes.destinations.changed]:
            instance = new.destinations[instance_id]
            where = f"destinations.{instance_id}"
            try:
                loaded = self.daemon.registry.get(instance.connector)
                if not issubclass(loaded.cls, Destination):
                    raise ValueError(f"{instance.connector!r} is not a destination connector")
                delivery_settings(instance, loaded.spec)
                event_filter(instance, loaded.spec)
                _check_start(instance.start)
            except (UnknownConnectorError, ValueError) as exc:
                errors.append(f"{where}: {exc}")
        if errors:
            raise ReloadRefused(errors)

    async def _apply_sources(
        self, new: Config, changes: ConfigChanges, built: dict[str, tuple[Source, InstanceContext]]
    ) -> None:
        daemon = self.daemon
        for instance_id in [*changes.sources.removed, *changes.sources.changed]:
            await self._remove_source(instance_id)
        for instance_id, (source, context) in built.items():
            daemon.sources[instance_id] = source
            daemon.contexts[instance_id] = context
            routes = source.routes()
            if routes:
                daemon.routes.add_routes(routes, owner=f"source:{instance_id}")
                if daemon.server is not None:
                    daemon.server.max_body = max(daemon.server.max_body, source.max_body_bytes())
            if self.pull is not None:
                self.pull.start_source(instance_id)

    async def _remove_source(self, instance_id: str) -> None:
        daemon = self.daemon
        daemon.routes.remove_owner(f"source:{instance_id}")
        if self.pull is not None:
            await self.pull.stop_source(instance_id)
        source = daemon.sources.pop(instance_id, None)
        daemon.contexts.pop(instance_id, None)
        if source is not None:
            try:
                await source.close()
            except Exception as exc:
                _log.error("source %s failed to close: %s", instance_id, exc)

    async def _apply_destinations(self, new: Config, changes: ConfigChanges) -> list[str]:
        router = self.router
        assert router is not None
        touched = [*changes.destinations.removed, *changes.destinations.changed]
        for destination in touched:
            await router.stop_destination(destination)
        errors: list[str] = []
        for destination in [*changes.destinations.changed, *changes.destinations.added]:
            instance = new.destinations[destination]
            if not instance.enabled or is_paused(self.daemon.log, destination):
                continue
            if await router.start_destination(instance) is None:
                errors.append(f"destinations.{destination}: {router.errors.get(destination)}")
        for destination in [*touched, *changes.destinations.added]:
            if self.replay is not None:
                await self.replay.destination_changed(destination)
        self.paused = paused_destinations(self.daemon.log, list(new.destinations))
        return errors

    # -- pause / resume ----------------------------------------------------------------

    def _instance_or_error(self, destination: str) -> None:
        if destination not in self.daemon.config.destinations:
            known = ", ".join(sorted(self.daemon.config.destinations)) or "none"
            raise KeyError(destination, f"no destination {destination!r} (configured: {known})")

    async def set_paused(self, destination: str, paused: bool) -> bool:
        """Pause or resume now (the admin API); return whether the state changed."""
        self._instance_or_error(destination)
        async with self._lock:
            changed = set_paused(self.daemon.log, destination, paused)
            await self._reconcile(destination, paused)
            return changed

    async def _reconcile(self, destination: str, paused: bool) -> None:
        router = self.router
        if paused:
            self.paused.add(destination)
            if router is not None and await router.stop_destination(destination):
                _log.info("destination %s paused", destination)
        else:
            self.paused.discard(destination)
            instance = self.daemon.config.destinations.get(destination)
            if (
                router is not None
                and instance is not None
                and instance.enabled
                and destination not in router.loops
            ):
                await router.start_destination(instance)
                _log.info("destination %s resumed", destination)
        if self.replay is not None:
            await self.replay.destination_changed(destination)

    async def _watch_flags(self) -> None:
        """Pick up pauses and resumes written to the log by `headwater destinations`."""
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                async with self._lock:
                    flagged = paused_destinations(
                        self.daemon.log, list(self.daemon.config.destinations)
                    )
                    for destination in sorted(flagged - self.paused):
                        await self._reconcile(destination, True)
                    for destination in sorted(self.paused - flagged):
                        await self._reconcile(destination, False)
            except Exception as exc:  # a bad moment of the log must not end the watcher
                _log.error("checking pause flags failed: %s", exc)


def _check_start(start: str) -> None:
    value = start.strip()
    if value in ("now", "beginning"):
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f'`start` = {start!r}; use "now", "beginning" or an ISO 8601 time such as '
            "2024-05-01T00:00:00Z"
        ) from None


def _problem_text(problem: Problem) -> str:
    """``file:line: CODE `key`: message``, as `headwater validate` shows it, with the key."""
    file, line = problem.file, problem.line
    where = f"{file}:{line}" if file and line else (file or "config")
    key = f"`{problem.path}`" if problem.path else ""
    shown = key and key not in problem.message
    return f"{where}: {problem.code} {key + ': ' if shown else ''}{problem.message}"
