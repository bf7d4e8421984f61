"""What a reload would change: connector instances added, changed and removed, and the
settings that only a restart applies.

An instance is *changed* when anything in its table differs (connector keys or framework
keys, ``enabled`` included); a changed instance is stopped and started again with its new
table, keeping its cursor. ``[server] listen``, ``[workspace] data_dir`` and ``[log]`` are
read once at start (the socket, the open log); a reload keeps the running values and says
a restart is needed, like nginx keeps its listening sockets on a reload.
"""

from __future__ import annotations

import msgspec

from ..config import Config, ConnectorInstance


class InstanceChanges(msgspec.Struct, kw_only=True):
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


class ConfigChanges(msgspec.Struct, kw_only=True):
    sources: InstanceChanges
    destinations: InstanceChanges
    restart_needed: list[str] = []
    """Settings that changed in the file and take effect at the next restart."""
    applied_live: list[str] = []
    """Framework settings applied without a restart (admin token, retention)."""

    @property
    def empty(self) -> bool:
        return self.sources.empty and self.destinations.empty and not self.applied_live


def diff_instances(
    old: dict[str, ConnectorInstance], new: dict[str, ConnectorInstance]
) -> InstanceChanges:
    return InstanceChanges(
        added=sorted(set(new) - set(old)),
        changed=sorted(i for i in set(new) & set(old) if new[i] != old[i]),
        removed=sorted(set(old) - set(new)),
    )


def diff_configs(
    running: Config, new: Config, *, started_from: Config | None = None
) -> ConfigChanges:
    """Changes from the running config to ``new``. ``started_from`` is the file as it was
    read at start (before command-line overrides such as ``--listen``), against which
    restart-only settings are compared, so an override is not reported as a change."""
    baseline = started_from or running
    restart: list[str] = []
    if new.server.listen != baseline.server.listen:
        restart.append("[server] listen")
    if new.workspace.data_dir != baseline.workspace.data_dir:
        restart.append("[workspace] data_dir")
    if new.workspace.region != baseline.workspace.region:
        restart.append("[workspace] region")
    if new.log != baseline.log:
        restart.append("[log]")
    live: list[str] = []
    if new.server.admin_token != running.server.admin_token:
        live.append("[server] admin_token")
    if new.workspace.retention != running.workspace.retention:
        live.append("[workspace] retention")
    if new.workspace.residency != running.workspace.residency:
        live.append("[workspace] residency")
    return ConfigChanges(
        sources=diff_instances(running.sources, new.sources),
        destinations=diff_instances(running.destinations, new.destinations),
        restart_needed=restart,
        applied_live=live,
    )


def with_running_settings(new: Config, running: Config) -> Config:
    """``new`` with the restart-only settings of the running daemon kept."""
    new.server.listen = running.server.listen
    new.workspace.data_dir = running.workspace.data_dir
    new.workspace.region = running.workspace.region
    new.log = running.log
    return new
