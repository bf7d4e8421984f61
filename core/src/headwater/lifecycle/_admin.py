"""The lifecycle admin routes (under /admin/, behind the daemon's bearer token).

POST /admin/reload                      re-read and apply the config file: 200 with what
                                        changed, or 422 with the errors (nothing changed)
POST /admin/destinations/{id}/pause     stop delivering; the destination accumulates lag
POST /admin/destinations/{id}/resume    deliver again from its cursor
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from ._reloader import Reloader

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class RouteAdder(Protocol):
    def add(self, method: str, path: str, handler: Handler) -> None: ...


def add_admin_routes(routes: RouteAdder, reloader: Reloader) -> None:
    async def reload(request: HttpRequest) -> HttpResponse:
        result = await reloader.reload(trigger="api")
        return HttpResponse.json(msgspec.to_builtins(result), 200 if result.applied else 422)

    def pausing(paused: bool) -> Handler:
        async def handler(request: HttpRequest) -> HttpResponse:
            destination = request.params["id"]
            try:
                changed = await reloader.set_paused(destination, paused)
            except KeyError as exc:
                return HttpResponse.error(404, "unknown_destination", str(exc.args[-1]))
            return HttpResponse.json(
                {"destination": destination, "paused": paused, "changed": changed}
            )

        return handler

    routes.add("POST", "/admin/reload", reload)
    routes.add("POST", "/admin/destinations/{id}/pause", pausing(True))
    routes.add("POST", "/admin/destinations/{id}/resume", pausing(False))
