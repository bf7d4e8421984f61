"""Services: long-running parts of the daemon beside the HTTP server.

A service is anything with ``async start()`` and ``async stop()``: the pull-source runner
here, the router (delivery to destinations), replay jobs. ``build_services`` is the one
place that lists them; each gets the running daemon, from which it reads ``config``,
``log``, ``registry``, ``metrics`` and adds HTTP routes to ``routes`` (admin routes under
``/admin/``). Services start in list order after the log is open and before the server
listens, and stop in reverse order after the server has drained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..lifecycle import lifecycle_services
from ..router._service import router_service
from ._pull import PullSourceRunner

if TYPE_CHECKING:
    from ._app import Daemon


class Service(Protocol):
    async def start(self) -> None:
        """Begin work; return once started (run loops as tasks)."""

    async def stop(self) -> None:
        """Finish or hand back in-flight work, then return; called once at shutdown."""


def build_services(daemon: Daemon) -> list[Service]:
    """The services of this daemon, in start order."""
    services: list[Service] = [PullSourceRunner(daemon)]
    if daemon.config.log.backend == "jetstream":
        # Several daemons share the stream: partitions leased per daemon (docs/scale.md).
        from ..replay import add_admin_routes as add_replay_routes
        from ..shared_delivery import SharedDelivery
        from ..shared_replay import SharedReplayService

        services.append(SharedDelivery(daemon))
        replay = SharedReplayService(daemon)  # one daemon runs a job, any daemon shows it
        add_replay_routes(daemon.routes, replay)
        services.append(replay)
    else:
        services.append(router_service(daemon))
    services += lifecycle_services(daemon, services)
    return services
