"""Connections that change while the daemon runs: config reloads (SIGHUP, `headwater
reload`, the admin API), paused destinations, and forgetting removed ones."""

from ._diff import ConfigChanges, InstanceChanges, diff_configs, diff_instances
from ._reloader import Reloader, ReloadResult
from ._services import lifecycle_services
from ._state import (
    ForgetResult,
    forget_destination,
    known_destinations,
    paused_destinations,
    set_paused,
)

__all__ = [
    "ConfigChanges",
    "ForgetResult",
    "InstanceChanges",
    "ReloadResult",
    "Reloader",
    "diff_configs",
    "diff_instances",
    "forget_destination",
    "known_destinations",
    "lifecycle_services",
    "paused_destinations",
    "set_paused",
]
