"""The push-source HTTP types of the contract."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from headwater_spec import (
    HttpRequest,
    HttpResponse,
    IngestUnavailableError,
    PushContext,
    PushReceipt,
    Rejection,
)


def test_json_and_error_responses_have_the_shared_shape() -> None:
    ok = HttpResponse.json({"success": True}, 200, [("X-A", "1")])
    assert ok.headers == [("Content-Type", "application/json"), ("X-A", "1")]
    assert msgspec.json.decode(ok.body) == {"success": True}
    bad = HttpResponse.error(401, "invalid_write_key", "no", decline=True)
    assert bad.status == 401 and bad.decline
    assert msgspec.json.decode(bad.body) == {"code": "invalid_write_key", "message": "no"}


def test_header_lookup_is_case_insensitive() -> None:
    request = HttpRequest(method="POST", path="/", headers={"content-type": "text/plain"})
    assert request.header("Content-Type") == "text/plain"
    assert request.header("X-Missing", "d") == "d"


def test_a_context_with_append_is_a_push_context() -> None:
    class Memory:
        instance_id = "web"
        region = "us"
        endpoint = None
        data_dir = Path(".")
        logger = logging.getLogger("t")

        async def append(
            self, events: Sequence[dict[str, Any]], rejected: Sequence[Rejection] = ()
        ) -> PushReceipt:
            return PushReceipt(accepted=len(events), rejected=len(rejected))

    class NoAppend:
        instance_id = "web"
        region = "us"
        endpoint = None
        data_dir = Path(".")
        logger = logging.getLogger("t")

    assert isinstance(Memory(), PushContext)
    assert not isinstance(NoAppend(), PushContext)


def test_unavailable_carries_retry_after() -> None:
    error = IngestUnavailableError("disk full", retry_after=30)
    assert error.retry_after == 30 and str(error) == "disk full"
