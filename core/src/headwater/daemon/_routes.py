"""The route table of the daemon's one HTTP server.

Push sources, the daemon's own endpoints and services all add ``(method, path, handler)``
here. A path is exact (``/v1/batch``) or holds ``{name}`` segments (``/admin/replays/{id}``),
whose values arrive in ``request.params``. Several handlers may serve the same route (two
instances of the same push source); they are tried in order while they *decline*.

Routes under ``/admin/`` need ``Authorization: Bearer <[server] admin_token>``; without a
configured token the admin API is off (403), never open.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from headwater_spec import HttpRequest, HttpResponse, PushHandler

from ._metrics import Metrics

ADMIN_PREFIX = "/admin/"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class _Route:
    template: str
    handlers: list[PushHandler] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)


@dataclass
class _Pattern:
    method: str
    template: str
    regex: re.Pattern[str]
    route: _Route


class RouteTable:
    """Routes by method and path, with admin auth and per-route metrics."""

    def __init__(self, metrics: Metrics, admin_token: str | None = None) -> None:
        self.admin_token = admin_token.encode() if admin_token else None
        self._exact: dict[tuple[str, str], _Route] = {}
        self._patterns: list[_Pattern] = []
        self._requests = metrics.counter(
            "headwater_http_requests_total", "HTTP requests answered", ("route", "status")
        )
        self._latency = metrics.histogram(
            "headwater_http_request_duration_seconds", "Time to answer a request", ("route",)
        )

    def add(
        self,
        method: str,
        path: str,
        handler: PushHandler,
        *,
        admin: bool | None = None,
        owner: str | None = None,
    ) -> None:
        """Serve ``method path`` with ``handler``; ``admin`` defaults to paths under /admin/.
        ``owner`` (e.g. ``source:web``) lets ``remove_owner`` take the routes away again
        when a reload removes or changes that source."""
        method = method.upper()
        path = _normalise(path)
        if admin is None:
            admin = path.startswith(ADMIN_PREFIX)
        if admin:
            handler = self._guarded(handler)
        if "{" not in path:
            route = self._exact.setdefault((method, path), _Route(path))
        else:
            found = next(
                (p for p in self._patterns if p.method == method and p.template == path), None
            )
            if found is None:
                found = _Pattern(method, path, _compile(path), _Route(path))
                self._patterns.append(found)
            route = found.route
        route.handlers.append(handler)
        route.owners.append(owner)

    def add_routes(
        self, routes: Sequence[tuple[str, str, PushHandler]], *, owner: str | None = None
    ) -> None:
        for method, path, handler in routes:
            self.add(method, path, handler, owner=owner)

    def remove_owner(self, owner: str) -> int:
        """Drop every handler added with ``owner``; a route left without handlers goes
        (404 again). Returns how many handlers were removed."""
        removed = 0
        for route in [*self._exact.values(), *(p.route for p in self._patterns)]:
            keep = [(h, o) for h, o in zip(route.handlers, route.owners, strict=True) if o != owner]
            removed += len(route.handlers) - len(keep)
            route.handlers = [h for h, _ in keep]
            route.owners = [o for _, o in keep]
        self._exact = {k: r for k, r in self._exact.items() if r.handlers}
        self._patterns = [p for p in self._patterns if p.route.handlers]
        return removed

    def templates(self) -> list[tuple[str, str]]:
        """(method, path) of every route, for listings."""
        exact = list(self._exact)
        return sorted(exact + [(p.method, p.template) for p in self._patterns])

    def _find(self, method: str, path: str, request: HttpRequest) -> _Route | None:
        route = self._exact.get((method, path))
        if route is not None:
            return route
        for pattern in self._patterns:
            if pattern.method != method:
                continue
            match = pattern.regex.fullmatch(path)
            if match:
                request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                return pattern.route
        return None

    def _allowed(self, path: str) -> list[str]:
        methods = {m for (m, p) in self._exact if p == path}
        methods.update(p.method for p in self._patterns if p.regex.fullmatch(path))
        return sorted(methods)

    async def dispatch(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        path = _normalise(request.path)
        route = self._find(request.method, path, request)
        if route is None:
            allowed = self._allowed(path)
            if allowed:
                response = HttpResponse.error(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed on {path}; use {', '.join(allowed)}",
                    [("Allow", ", ".join(allowed))],
                )
            elif not request.path:
                response = HttpResponse.error(400, "bad_request", "no path")
            else:
                response = HttpResponse.error(404, "not_found", f"no endpoint at {path}")
            template = "other"
        else:
            template = route.template
            response = await route.handlers[0](request)
            for handler in route.handlers[1:]:
                if not response.decline:
                    break
                response = await handler(request)
        self._observe(template, response.status, time.perf_counter() - started)
        return response

    def _observe(self, template: str, status: int, seconds: float) -> None:
        self._requests.labels(template, str(status)).inc()
        self._latency.labels(template).observe(seconds)

    def _guarded(self, handler: PushHandler) -> PushHandler:
        async def guarded(request: HttpRequest) -> HttpResponse:
            if self.admin_token is None:
                return HttpResponse.error(
                    403,
                    "admin_disabled",
                    "the admin API is off; set [server] admin_token (e.g. "
                    '"${HEADWATER_ADMIN_TOKEN}") to enable it',
                )
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode("utf-8", "surrogatepass"), self.admin_token
            ):
                return HttpResponse.error(
                    401,
                    "unauthorized",
                    "admin routes need `Authorization: Bearer <[server] admin_token>`",
                    [("WWW-Authenticate", 'Bearer realm="headwater-admin"')],
                )
            return await handler(request)

        return guarded


def _compile(template: str) -> re.Pattern[str]:
    parts = []
    for segment in template.split("/"):
        match = _PARAM.fullmatch(segment)
        parts.append(f"(?P<{match.group(1)}>[^/]+)" if match else re.escape(segment))
    return re.compile("/".join(parts))


def _normalise(path: str) -> str:
    if len(path) > 1 and path.endswith("/"):
        return path.rstrip("/") or "/"
    return path
