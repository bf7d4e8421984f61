"""The router's admin routes (under /admin/, behind the daemon's bearer token).

GET    /admin/destinations                           every destination's status
GET    /admin/destinations/{id}                      one destination's status
GET    /admin/destinations/{id}/dead-letters?limit=N&after=SEQ
                                                     a page of its dead letters (default 100,
                                                     at most 10000), oldest first, after seq
                                                     SEQ: {"dead_letters": [...], "next": seq}
                                                     (``next`` null on the last page)
POST   /admin/destinations/{id}/dead-letters/redrive start re-queueing them (in chunks as
                                                     the destination has room): {"redriven": n}
DELETE /admin/destinations/{id}/dead-letters         delete them: {"purged": n}

Listing and purging read and write the log only and run in a worker thread, so a
destination with millions of dead letters does not hold up the daemon's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from ._deadletters import PAGE_LIMIT
from ._delivery import StartError
from ._router import Router, UnknownDestinationError

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
DEFAULT_LIMIT = PAGE_LIMIT


def _whole(query: dict[str, list[str]], name: str) -> int | None:
    raw = query.get(name, [""])[0]
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"`{name}` must be a whole number, got {raw!r}") from None


class RouteAdder(Protocol):
    def add(self, method: str, path: str, handler: Handler) -> None: ...


def add_admin_routes(routes: RouteAdder, router: Router) -> None:
    def guard(call: Callable[[HttpRequest], object], *, in_thread: bool = False) -> Handler:
        async def handler(request: HttpRequest) -> HttpResponse:
            try:
                if in_thread:
                    result = await asyncio.to_thread(call, request)
                else:
                    result = call(request)
                return HttpResponse.json(msgspec.to_builtins(result))
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
        limit = _whole(query, "limit")
        page = router.dead_letters(
            request.params["id"],
            limit=DEFAULT_LIMIT if limit is None else limit,
            after=_whole(query, "after"),
        )
        return {
            "destination": request.params["id"],
            "dead_letters": page.letters,
            "next": page.next,
        }

    def redrive(request: HttpRequest) -> object:
        return {
            "destination": request.params["id"],
            "redriven": router.redrive(request.params["id"]),
        }

    def purge(request: HttpRequest) -> object:
        return {"destination": request.params["id"], "purged": router.purge(request.params["id"])}

    routes.add("GET", "/admin/destinations", guard(listing))
    routes.add("GET", "/admin/destinations/{id}", guard(one))
    routes.add("GET", "/admin/destinations/{id}/dead-letters", guard(dead_letters, in_thread=True))
    routes.add("POST", "/admin/destinations/{id}/dead-letters/redrive", guard(redrive))
    routes.add("DELETE", "/admin/destinations/{id}/dead-letters", guard(purge, in_thread=True))
