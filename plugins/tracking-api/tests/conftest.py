"""A tracking-api source wired to an in-memory PushContext, and a way to call its routes."""

from __future__ import annotations

import base64
import gzip
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from headwater_spec import (
    HttpRequest,
    HttpResponse,
    IngestUnavailableError,
    PushReceipt,
    Rejection,
)
from headwater_tracking_api import TrackingApiSource

KEY = "key-one"


class MemoryContext:
    """Implements PushContext; records what was appended, or raises ``fail``."""

    instance_id = "web"
    region = "us"
    endpoint = None
    data_dir = Path(".")
    logger = logging.getLogger("test.tracking-api")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.rejections: list[Rejection] = []
        self.appends = 0
        self.fail: IngestUnavailableError | None = None

    async def append(
        self, events: Sequence[dict[str, Any]], rejected: Sequence[Rejection] = ()
    ) -> PushReceipt:
        if self.fail is not None:
            raise self.fail
        self.appends += 1
        self.events.extend(events)
        self.rejections.extend(rejected)
        return PushReceipt(accepted=len(events), rejected=len(rejected))


class Client:
    """Calls the source's handlers the way the daemon does (declines included)."""

    key = KEY

    def __init__(self, source: TrackingApiSource, context: MemoryContext) -> None:
        self.source = source
        self.context = context
        self.routes = {(m, p): h for m, p, h in source.routes()}

    async def request(
        self,
        path: str,
        body: Any = None,
        *,
        method: str = "POST",
        key: str | None = KEY,
        auth: str = "basic",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        gzipped: bool = False,
    ) -> HttpResponse:
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        data = raw if raw is not None else (msgspec.json.encode(body) if body is not None else b"")
        if gzipped:
            data = gzip.compress(data)
            hdrs["content-encoding"] = "gzip"
        if key is not None and auth == "basic":
            hdrs["authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        elif key is not None and auth == "bearer":
            hdrs["authorization"] = f"Bearer {key}"
        handler = self.routes[(method, path)]
        return await handler(HttpRequest(method=method, path=path, headers=hdrs, body=data))

    @staticmethod
    def answer(response: HttpResponse) -> Any:
        return msgspec.json.decode(response.body)


@pytest.fixture
def make_client() -> Callable[..., Client]:
    def make(**config: Any) -> Client:
        context = MemoryContext()
        source = TrackingApiSource({"write_keys": [KEY], **config}, context)
        return Client(source, context)

    return make


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    return make_client()
