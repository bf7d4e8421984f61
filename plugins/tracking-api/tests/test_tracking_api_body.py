"""Bodies: gzip, JSON, limits. Every refusal stores nothing."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from typing import Any

import msgspec


def track(i: int = 0, **extra: object) -> dict[str, object]:
    return {"type": "track", "userId": f"u{i}", "event": "E", "messageId": f"m{i}", **extra}


async def test_gzip_body_is_accepted(client: Any) -> None:
    response = await client.request("/v1/batch", {"batch": [track(1), track(2)]}, gzipped=True)
    assert response.status == 200
    assert [e["messageId"] for e in client.context.events] == ["m1", "m2"]


async def test_gzip_bomb_is_413_without_inflating_it(client: Any) -> None:
    bomb = gzip.compress(b"[" + b" " * (200 * 1024 * 1024) + b"]")
    started = time.perf_counter()
    response = await client.request("/v1/batch", raw=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert client.answer(response)["code"] == "request_too_large"
    assert time.perf_counter() - started < 5  # the cap stops inflation early
    assert client.context.appends == 0


async def test_corrupt_gzip_is_400(client: Any) -> None:
    response = await client.request(
        "/v1/batch", raw=b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"}
    )
    assert response.status == 400
    assert client.answer(response)["code"] == "invalid_encoding"


async def test_truncated_gzip_is_400(client: Any) -> None:
    data = gzip.compress(msgspec.json.encode({"batch": [track()]}))[:-12]
    response = await client.request("/v1/batch", raw=data, headers={"Content-Encoding": "gzip"})
    assert response.status == 400
    assert client.context.appends == 0


async def test_deflate_is_accepted(client: Any) -> None:
    data = zlib.compress(msgspec.json.encode({"batch": [track()]}))
    response = await client.request("/v1/batch", raw=data, headers={"Content-Encoding": "deflate"})
    assert response.status == 200


async def test_unknown_encoding_is_415(client: Any) -> None:
    response = await client.request("/v1/batch", raw=b"x", headers={"Content-Encoding": "br"})
    assert response.status == 415
    assert client.answer(response)["code"] == "unsupported_encoding"


async def test_text_plain_json_from_a_beacon_is_accepted(client: Any) -> None:
    response = await client.request(
        "/v1/t", {"userId": "u", "event": "E"}, headers={"Content-Type": "text/plain"}
    )
    assert response.status == 200


async def test_invalid_json_is_400(client: Any) -> None:
    response = await client.request("/v1/batch", raw=b'{"batch": [')
    assert response.status == 400
    assert client.answer(response)["code"] == "invalid_json"
    assert client.context.appends == 0


async def test_empty_body_is_400(client: Any) -> None:
    response = await client.request("/v1/track", raw=b"")
    assert response.status == 400


async def test_json_that_is_not_an_object_is_400(client: Any) -> None:
    response = await client.request("/v1/batch", raw=b"[1, 2]")
    assert response.status == 400
    assert client.answer(response)["code"] == "invalid_body"


async def test_batch_that_is_not_a_list_is_400(client: Any) -> None:
    response = await client.request("/v1/batch", {"batch": {"type": "track"}})
    assert response.status == 400
    assert "`batch`" in client.answer(response)["message"]


async def test_body_over_the_request_limit_is_413(make_client: Callable[..., Any]) -> None:
    client = make_client(max_request_bytes=4096)
    response = await client.request("/v1/batch", {"batch": [track(i) for i in range(100)]})
    assert response.status == 413
    assert client.context.appends == 0


async def test_too_many_events_is_413(make_client: Callable[..., Any]) -> None:
    client = make_client(max_batch_events=3)
    response = await client.request("/v1/batch", {"batch": [track(i) for i in range(4)]})
    assert response.status == 413
    assert client.answer(response)["code"] == "too_many_events"
    assert client.context.appends == 0


async def test_single_event_over_32kb_is_413(client: Any) -> None:
    response = await client.request("/v1/track", track(properties={"x": "a" * 40_000}))
    assert response.status == 413
    assert client.answer(response)["code"] == "event_too_large"
    assert client.context.appends == 0


async def test_batch_item_over_32kb_is_rejected_alone(client: Any) -> None:
    big = track(2, properties={"x": "a" * 40_000})
    response = await client.request("/v1/batch", {"batch": [track(1), big]})
    assert response.status == 200
    body = client.answer(response)
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert "32768-byte limit" in body["errors"][0]["message"]
    assert client.context.rejections[0].raw["messageId"] == "m2"


async def test_empty_batch_stores_nothing_and_succeeds(client: Any) -> None:
    response = await client.request("/v1/batch", {"batch": []})
    assert response.status == 200
    assert client.context.appends == 0
