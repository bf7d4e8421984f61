"""The plugin host: find connector packages through entry points and register them.

Built-in connectors are separate distributions found the same way as third-party ones;
nothing here imports a plugin by name. A plugin that fails to import, declares an unknown
hook or registers a connector with an invalid spec is reported by name and skipped; the
others load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec
import pluggy

from headwater_spec import PROJECT_NAME, Connector, ConnectorSpec, HeadwaterSpecs, SpecError

PLUGINS_ENV = "HEADWATER_PLUGINS"


class LoadedConnector(msgspec.Struct, frozen=True):
    """A registered connector and where it came from."""

    name: str
    cls: type[Connector]
    spec: ConnectorSpec
    plugin: str
    distribution: str
    version: str


class PluginFailure(msgspec.Struct, frozen=True):
    """A plugin (or one of its connectors) that could not be loaded, and why."""

    plugin: str
    distribution: str
    error: str


class UnknownConnectorError(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        known = sorted(known)
        hint = f"installed: {', '.join(known)}" if known else "no connectors are installed"
        super().__init__(f"no connector named {name!r} is installed ({hint})")

    def __str__(self) -> str:
        return str(self.args[0])


class ConnectorRegistry:
    """Every connector the loaded plugins registered, by name."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.connectors: dict[str, LoadedConnector] = {}
        self.failures: list[PluginFailure] = []

    def get(self, name: str) -> LoadedConnector:
        try:
            return self.connectors[name]
        except KeyError:
            raise UnknownConnectorError(name, self.connectors) from None

    def __contains__(self, name: object) -> bool:
        return name in self.connectors

    def redact(self, connector: str, options: Mapping[str, Any], text: str) -> str:
        """``text`` (an exception's, say) with every secret of an instance's config masked,
        nested ones included; as it is when the connector is not installed."""
        loaded = self.connectors.get(connector)
        return loaded.spec.redactor(options)(text) if loaded is not None else text

    def __iter__(self) -> Iterator[LoadedConnector]:
        return iter(sorted(self.connectors.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self.connectors)

    def add(self, cls: object, *, plugin: str, distribution: str, version: str) -> None:
        """Register one connector class; a bad one becomes a PluginFailure."""
        where = f"plugin {plugin!r} ({distribution})"
        if not isinstance(cls, type) or not issubclass(cls, Connector):
            self._fail(plugin, distribution, f"{where} registered {cls!r}, not a Connector class")
            return
        spec = getattr(cls, "spec", None)
        if isinstance(spec, dict):
            try:
                spec = ConnectorSpec.from_dict(spec, owner=f"{where}, connector {cls.__name__}")
            except SpecError as exc:
                self._fail(plugin, distribution, str(exc))
                return
        if not isinstance(spec, ConnectorSpec):
            self._fail(
                plugin,
                distribution,
                f"{where}: connector {cls.__name__} has no `spec`; set "
                "`spec = ConnectorSpec.from_package(__package__)`",
            )
            return
        if spec.name in self.connectors:
            other = self.connectors[spec.name]
            self._fail(
                plugin,
                distribution,
                f"{where}: connector name {spec.name!r} is already registered by "
                f"{other.distribution}; uninstall one of them",
            )
            return
        self.connectors[spec.name] = LoadedConnector(
            spec.name, cls, spec, plugin, distribution, version
        )

    def _fail(self, plugin: str, distribution: str, error: str) -> None:
        self.failures.append(PluginFailure(plugin, distribution, error))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def selected_distributions(value: str | None = None) -> set[str] | None:
    """The distributions named in HEADWATER_PLUGINS (comma separated), or None for all.

    Names compare as PyPI does (case, `-`, `_` and `.` alike), like llm's LLM_LOAD_PLUGINS.
    Empty or unset loads every installed plugin."""
    raw = os.environ.get(PLUGINS_ENV) if value is None else value
    if raw is None or not raw.strip():
        return None
    return {_normalize(part.strip()) for part in raw.split(",") if part.strip()}


def load_plugins(
    *, only: set[str] | None = None, extra: Iterable[tuple[str, object]] = ()
) -> ConnectorRegistry:
    """Load every plugin of the ``headwater`` entry point group (or those in ``only``).

    ``extra`` registers in-process plugins (name, module-or-object) the same way, which is
    what tests use for throwaway connectors.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(HeadwaterSpecs)
    registry = ConnectorRegistry(manager)
    wanted = only if only is not None else selected_distributions()
    origins: dict[str, tuple[str, str]] = {}

    for ep in sorted(entry_points(group=PROJECT_NAME), key=lambda e: e.name):
        dist, version = _dist_of(ep)
        if wanted is not None and _normalize(dist) not in wanted:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            registry._fail(
                ep.name,
                dist,
                f"plugin {ep.name!r} ({dist}) failed to import: {type(exc).__name__}: {exc}",
            )
            continue
        _register(manager, registry, ep.name, plugin, dist, version, origins)

    for name, plugin in extra:
        _register(manager, registry, name, plugin, "(in-process)", "0", origins)

    for impl in manager.hook.register_connectors.get_hookimpls():
        dist, version = origins.get(impl.plugin_name, ("(unknown)", "0"))

        def register(
            cls: type[Connector], _p: str = impl.plugin_name, _d: str = dist, _v: str = version
        ) -> None:
            registry.add(cls, plugin=_p, distribution=_d, version=_v)

        try:
            impl.function(register=register)
        except Exception as exc:
            registry._fail(
                impl.plugin_name,
                dist,
                f"plugin {impl.plugin_name!r} ({dist}) failed in register_connectors: "
                f"{type(exc).__name__}: {exc}",
            )
    return registry


def _register(
    manager: pluggy.PluginManager,
    registry: ConnectorRegistry,
    name: str,
    plugin: object,
    dist: str,
    version: str,
    origins: dict[str, tuple[str, str]],
) -> None:
    try:
        manager.register(plugin, name=name)
        manager.check_pending()
    except (pluggy.PluginValidationError, ValueError) as exc:
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        registry._fail(name, dist, f"plugin {name!r} ({dist}) is invalid: {exc}")
        return
    origins[name] = (dist, version)


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "(unknown)", "0"
    return dist.name, dist.version
