"""The pluggy markers and hook specifications a connector package implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._connector import Connector

PROJECT_NAME = "headwater"
"""The pluggy project name and the entry point group connectors are published under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[["type[Connector]"], None]


class HeadwaterSpecs:
    """Hooks the Headwater daemon calls on every loaded plugin."""

    @hookspec
    def register_connectors(self, register: Register) -> None:
        """Call ``register(ConnectorClass)`` once for each connector the plugin provides."""
