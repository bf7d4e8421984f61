"""The replay admin routes (under /admin/, behind the daemon's bearer token).

GET    /admin/replays                 every job with its progress
POST   /admin/replays                 create and start a job: {"destination": "B",
                                      "from": "2024-05-01", "to": "2h", "sources": [..],
                                      "event_types": [..], "events": [..], "rate": "500/s"}
                                      -> 201 and the job's status
GET    /admin/replays/{id}            one job: state, progress (done/total/rate/ETA), counts
POST   /admin/replays/{id}/pause      stop sending; the job keeps its place
POST   /admin/replays/{id}/resume     go on from there
POST   /admin/replays/{id}/cancel     stop for good; its parked retries are dropped
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from ._jobs import JobStateError, ReplayRequest, UnknownJobError
from ._service import ReplayService

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class RouteAdder(Protocol):
    def add(self, method: str, path: str, handler: Handler) -> None: ...


def add_admin_routes(routes: RouteAdder, service: ReplayService) -> None:
    def guard(call: Callable[[HttpRequest], Awaitable[object]], status: int = 200) -> Handler:
        async def handler(request: HttpRequest) -> HttpResponse:
            try:
                return HttpResponse.json(msgspec.to_builtins(await call(request)), status)
            except UnknownJobError as exc:
                return HttpResponse.error(404, "unknown_replay", str(exc))
            except JobStateError as exc:
                return HttpResponse.error(409, "conflict", str(exc))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                return HttpResponse.error(400, "bad_request", f"request body: {exc}")
            except ValueError as exc:
                return HttpResponse.error(400, "bad_request", str(exc))

        return handler

    async def listing(request: HttpRequest) -> object:
        return {"replays": service.list()}

    async def create(request: HttpRequest) -> object:
        body = msgspec.json.decode(request.body or b"{}", type=ReplayRequest)
        return await service.create(body)

    async def one(request: HttpRequest) -> object:
        return service.status(request.params["id"])

    def action(name: str) -> Callable[[HttpRequest], Awaitable[object]]:
        async def run(request: HttpRequest) -> object:
            return await service.control(request.params["id"], name)

        return run

    routes.add("GET", "/admin/replays", guard(listing))
    routes.add("POST", "/admin/replays", guard(create, 201))
    routes.add("GET", "/admin/replays/{id}", guard(one))
    for name in ("pause", "resume", "cancel"):
        routes.add("POST", f"/admin/replays/{{id}}/{name}", guard(action(name)))
