"""The `tracking-api` source: the Segment-compatible HTTP tracking API.

Every instance serves the same paths; a request belongs to the instance owning its write
key. An instance that does not own the key *declines* the request (see ``HttpResponse``), so
the daemon offers it to the next instance and answers 401 only when none owns it.

Order of checks, cheapest first, so a bad request costs little and stores nothing: the
write key in the Authorization header, the body size as sent, decompression (capped),
JSON, the write key in the body, the batch size; then per item validation, where a bad item
is rejected alone (kept in the log's rejected table) and the others are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from headwater_spec import (
    ConnectorContext,
    ConnectorSpec,
    HttpRequest,
    HttpResponse,
    IngestUnavailableError,
    PushContext,
    PushHandler,
    Route,
    Source,
)

from ._auth import KeyProblem, key_from_header, key_matches
from ._body import BodyError, decode_object, decompress
from ._prepare import Preparer
from ._settings import Settings

EVENT_PATHS: dict[str, tuple[str, ...]] = {
    "track": ("/v1/track", "/v1/t"),
    "identify": ("/v1/identify", "/v1/i"),
    "page": ("/v1/page", "/v1/p"),
    "screen": ("/v1/screen", "/v1/s"),
    "group": ("/v1/group", "/v1/g"),
    "alias": ("/v1/alias", "/v1/a"),
}
"""Each event endpoint, with the one-letter path the browser SDK (analytics.js 2) uses."""
BATCH_PATHS = ("/v1/batch", "/v1/b", "/v1/import")
ALLOWED_HEADERS = "Content-Type, Content-Encoding, Authorization"
GZIP_SLACK = 1024
"""Incompressible data grows a little when gzipped; the raw body may exceed the limit by it."""


class TrackingApiSource(Source):
    spec = ConnectorSpec.from_package(__package__)

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        if not isinstance(context, PushContext):
            raise TypeError(
                "tracking-api is a push source: its context must provide `append` "
                "(a PushContext); run it inside `headwater serve`"
            )
        self.push: PushContext = context
        self.settings = Settings.from_config(self.config)
        self._keys = [k.encode("utf-8", "surrogatepass") for k in self.settings.write_keys]
        self._any_origin = "*" in self.settings.cors_origins
        self._origins = frozenset(self.settings.cors_origins)

    def routes(self) -> Sequence[Route]:
        routes: list[Route] = []
        for kind, paths in EVENT_PATHS.items():
            for path in paths:
                routes.append(("POST", path, self._handler(kind)))
                routes.append(("OPTIONS", path, self.preflight))
        for path in BATCH_PATHS:
            routes.append(("POST", path, self._handler(None)))
            routes.append(("OPTIONS", path, self.preflight))
        return routes

    def max_body_bytes(self) -> int:
        return self.settings.max_request_bytes + GZIP_SLACK

    def _handler(self, kind: str | None) -> PushHandler:
        async def handle(request: HttpRequest) -> HttpResponse:
            return await self.receive(request, kind)

        return handle

    # -- CORS ----------------------------------------------------------------------------

    def cors_headers(self, request: HttpRequest) -> list[tuple[str, str]]:
        origin = request.headers.get("origin")
        if not origin:
            return []
        if self._any_origin:
            return [("Access-Control-Allow-Origin", "*")]
        if origin in self._origins:
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        return []

    async def preflight(self, request: HttpRequest) -> HttpResponse:
        """Answer a browser's CORS preflight; an origin this instance does not allow is
        declined, so another instance (or nobody) allows it."""
        cors = self.cors_headers(request)
        if not cors:
            return HttpResponse(status=204, decline=True)
        requested = request.headers.get("access-control-request-headers") or ALLOWED_HEADERS
        return HttpResponse(
            status=204,
            headers=[
                *cors,
                ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                ("Access-Control-Allow-Headers", requested),
                ("Access-Control-Max-Age", "86400"),
            ],
        )

    # -- events --------------------------------------------------------------------------

    async def receive(self, request: HttpRequest, kind: str | None) -> HttpResponse:
        """Handle one POST; ``kind`` is the event type of the path, None for a batch."""
        cors = self.cors_headers(request)
        settings = self.settings
        try:
            header_key = key_from_header(request.headers.get("authorization", ""))
        except KeyProblem as exc:
            return HttpResponse.error(401, "invalid_authorization", str(exc), cors, decline=True)
        if header_key is not None and not key_matches(header_key, self._keys):
            return _bad_key(cors)
        try:
            if len(request.body) > settings.max_request_bytes + GZIP_SLACK:
                raise BodyError(
                    413,
                    "request_too_large",
                    f"the request body is over {settings.max_request_bytes} bytes",
                )
            data = decompress(
                request.body,
                request.headers.get("content-encoding", ""),
                settings.max_request_bytes,
            )
            body = decode_object(data)
        except BodyError as exc:
            return HttpResponse.error(exc.status, exc.code, exc.message, cors)
        body_key = body.pop("writeKey", None)
        if header_key is None:
            if not isinstance(body_key, str) or not body_key:
                return HttpResponse.error(
                    401,
                    "missing_write_key",
                    "no write key: send it as the HTTP Basic user, as a Bearer token or as "
                    "`writeKey` in the body",
                    cors,
                    decline=True,
                )
            if not key_matches(body_key, self._keys):
                return _bad_key(cors)

        received_at = datetime.now(UTC)
        if kind is None:
            items = body.get("batch")
            if not isinstance(items, list):
                return HttpResponse.error(
                    400,
                    "invalid_body",
                    '`batch` must be an array of events: {"batch": [{...}, ...]}',
                    cors,
                )
            if len(items) > settings.max_batch_events:
                return HttpResponse.error(
                    413,
                    "too_many_events",
                    f"the batch has {len(items)} events, over the limit of "
                    f"{settings.max_batch_events}; send smaller batches",
                    cors,
                )
            context, integrations = body.get("context"), body.get("integrations")
            preparer = Preparer(
                received_at=received_at,
                max_event_bytes=settings.max_event_bytes,
                body_bytes=len(data),
                batch_context=context if isinstance(context, dict) else None,
                batch_integrations=integrations if isinstance(integrations, dict) else None,
                batch_sent_at=body.get("sentAt"),
            )
        else:
            if len(data) > settings.max_event_bytes:
                return HttpResponse.error(
                    413,
                    "event_too_large",
                    f"the event is {len(data)} bytes, over the {settings.max_event_bytes}"
                    "-byte limit",
                    cors,
                )
            items = [body]
            preparer = Preparer(
                received_at=received_at,
                max_event_bytes=settings.max_event_bytes,
                body_bytes=0,
                kind=kind,
            )

        prepared = preparer.prepare(items)
        # Nothing here keeps the decoded request while the commit is awaited: with 32
        # requests waiting on each fsync, freeing it after the commit cost ~15% more CPU.
        del body, items
        accepted, rejected = len(prepared.events), len(prepared.rejections)
        if accepted or rejected:
            try:
                receipt = await self.push.append(prepared.take_events(), prepared.rejections)
            except IngestUnavailableError as exc:
                retry = max(1, round(exc.retry_after))
                return HttpResponse.error(
                    503, "unavailable", str(exc), [*cors, ("Retry-After", str(retry))]
                )
            # The host may reject more than we did (what its storage cannot hold).
            accepted, rejected = receipt.accepted, receipt.rejected
        answer: dict[str, Any] = {"success": True, "accepted": accepted, "rejected": rejected}
        if prepared.errors:
            answer["errors"] = prepared.errors
        return HttpResponse.json(answer, 200, cors)


def _bad_key(cors: list[tuple[str, str]]) -> HttpResponse:
    return HttpResponse.error(
        401, "invalid_write_key", "the write key is not valid for this source", cors, decline=True
    )
