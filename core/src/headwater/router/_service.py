"""The router as a daemon service: built from the running daemon, with its admin routes
and metrics registered there. Used by ``headwater.daemon._services.build_services``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._admin import add_admin_routes
from ._router import Router

if TYPE_CHECKING:
    from ..daemon import Daemon


def router_service(daemon: Daemon) -> Router:
    router = Router(
        daemon.log,
        daemon.config,
        daemon.registry,
        context_factory=daemon.make_context,
        metrics=daemon.metrics,
    )
    add_admin_routes(daemon.routes, router)
    return router
