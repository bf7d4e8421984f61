"""The router's admin routes (under /admin/, behind the daemon's bearer token).

GET    /admin/destinations                           every destination's status
GET    /admin/destinations/{id}                      one destination's status
GET    /admin/destinations/{id}/dead-letters?limit=N its dead letters (default 100)
POST   /admin/destinations/{id}/dead-letters/redrive re-queue them now: {"redriven": n}
DELETE /admin/destinations/{id}/dead-letters         delete them: {"purged": n}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from ._delivery import StartError
from ._router import Router, UnknownDestinationError

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
DEFAULT_LIMIT = 100


class RouteAdder(Protocol):
    def add(self, method: str, path: str, handler: Handler) -> None: ...


def add_admin_routes(routes: RouteAdder, router: Router) -> None:
    def guard(call: Callable[[HttpRequest], object]) -> Handler:
        async def handler(request: HttpRequest) -> HttpResponse:
            try:
                return HttpResponse.json(msgspec.to_builtins(call(request)))
            except UnknownDestinationError as exc:
                return HttpResponse.error(404, "unknown_destination", str(exc))
            except StartError as exc:
                return HttpResponse.error(409, "not_running", str(exc))
            except ValueError as exc:
                return HttpResponse.error(400, "bad_request", str(exc))

        return handler

    def listing(request: HttpRequest) -> object:
        return {"destinations": router.status()}

    def one(request: HttpRequest) -> object:
        wanted = request.params["id"]
        router.instance(wanted)  # 404 for an unknown id
        return next(s for s in router.status() if s.id == wanted)

    def dead_letters(request: HttpRequest) -> object:
        query = parse_qs(request.query)
        raw = query.get("limit", [str(DEFAULT_LIMIT)])[0]
        try:
            limit = int(raw)
        except ValueError:
            raise ValueError(f"`limit` must be a whole number, got {raw!r}") from None
        letters = router.dead_letters(request.params["id"], limit=limit)
        return {"destination": request.params["id"], "dead_letters": letters}

    def redrive(request: HttpRequest) -> object:
        return {
            "destination": request.params["id"],
            "redriven": router.redrive(request.params["id"]),
        }

    def purge(request: HttpRequest) -> object:
        return {"destination": request.params["id"], "purged": router.purge(request.params["id"])}

    routes.add("GET", "/admin/destinations", guard(listing))
    routes.add("GET", "/admin/destinations/{id}", guard(one))
    routes.add("GET", "/admin/destinations/{id}/dead-letters", guard(dead_letters))
    routes.add("POST", "/admin/destinations/{id}/dead-letters/redrive", guard(redrive))
    routes.add("DELETE", "/admin/destinations/{id}/dead-letters", guard(purge))
