"""The services of this issue's features, added to the daemon's list by ``build_services``:
replay jobs (with the router of an LMDB log), retention (LMDB), and the reloader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..log import LmdbLog
from ..replay import ReplayService
from ..replay import add_admin_routes as add_replay_routes
from ..retention import RetentionService
from ..router import Router
from ._admin import add_admin_routes
from ._reloader import Reloader

if TYPE_CHECKING:
    from ..daemon import Daemon
    from ..daemon._pull import PullSourceRunner


def lifecycle_services(daemon: Daemon, services: Sequence[Any]) -> list[Any]:
    """Replay, retention and reload, wired to the router and pull runner in ``services``."""
    router = next((s for s in services if isinstance(s, Router)), None)
    pull: PullSourceRunner | None = next(
        (s for s in services if hasattr(s, "start_source") and hasattr(s, "stop_source")), None
    )
    out: list[Any] = []
    replay: ReplayService | None = None
    if router is not None:
        replay = ReplayService(
            daemon.log,
            daemon.config,
            daemon.registry,
            context_factory=daemon.make_context,
            router=router,
            config_source=lambda: daemon.config,
            metrics=daemon.metrics,
        )
        add_replay_routes(daemon.routes, replay)
        out.append(replay)
    if isinstance(daemon.log, LmdbLog):
        out.append(RetentionService(daemon.log, lambda: daemon.config))
    reloader = Reloader(daemon, router=router, replay=replay, pull=pull)
    add_admin_routes(daemon.routes, reloader)
    out.append(reloader)
    return out
