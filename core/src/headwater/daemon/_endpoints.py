"""The daemon's own endpoints: probes, metrics and the first admin routes.

- ``GET /healthz``: the process is alive (200 while it runs, even when draining);
- ``GET /readyz``: ready to take traffic (200), or starting / draining (503), for load
  balancers and orchestrators;
- ``GET /metrics``: Prometheus text format;
- ``GET /admin/sources``: the configured sources, push or pull, and their routes;
- ``GET /admin/log``: what the log holds (the same figures as `headwater log stats`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from ._metrics import CONTENT_TYPE
from ._pull import is_pull_source

if TYPE_CHECKING:
    from ._app import Daemon


def add_endpoints(daemon: Daemon) -> None:
    routes = daemon.routes

    async def healthz(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json({"status": "ok"})

    async def readyz(request: HttpRequest) -> HttpResponse:
        if daemon.state == "ready":
            return HttpResponse.json({"status": "ready"})
        return HttpResponse.error(503, "not_ready", f"the daemon is {daemon.state}")

    async def metrics(request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            status=200, body=daemon.metrics.render(), headers=[("Content-Type", CONTENT_TYPE)]
        )

    async def sources(request: HttpRequest) -> HttpResponse:
        rows: list[dict[str, Any]] = []
        for instance_id, source in daemon.sources.items():
            instance = daemon.config.sources[instance_id]
            rows.append(
                {
                    "id": instance_id,
                    "connector": instance.connector,
                    "mode": "pull" if is_pull_source(source) else "push",
                    "region": daemon.contexts[instance_id].region,
                    "routes": sorted({f"{m} {p}" for m, p, _ in source.routes()}),
                }
            )
        return HttpResponse.json({"sources": rows})

    async def log_stats(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(msgspec.to_builtins(daemon.log.stats()))

    routes.add("GET", "/healthz", healthz)
    routes.add("GET", "/readyz", readyz)
    routes.add("GET", "/metrics", metrics)
    routes.add("GET", "/admin/sources", sources)
    routes.add("GET", "/admin/log", log_stats)
