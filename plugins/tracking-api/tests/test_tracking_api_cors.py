"""CORS for browsers: preflight and the allow-origin header on answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


async def test_preflight_allows_any_origin_by_default(client: Any) -> None:
    response = await client.request(
        "/v1/batch",
        method="OPTIONS",
        key=None,
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    headers = dict(response.headers)
    assert response.status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type"


async def test_configured_origins_only(make_client: Callable[..., Any]) -> None:
    client = make_client(cors_origins=["https://app.example"])
    allowed = await client.request(
        "/v1/track", method="OPTIONS", key=None, headers={"Origin": "https://app.example"}
    )
    assert dict(allowed.headers)["Access-Control-Allow-Origin"] == "https://app.example"
    other = await client.request(
        "/v1/track", method="OPTIONS", key=None, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in dict(other.headers)
    assert other.decline


async def test_answers_carry_the_allow_origin_header(client: Any) -> None:
    response = await client.request(
        "/v1/track", {"userId": "u", "event": "E"}, headers={"Origin": "https://a.example"}
    )
    assert dict(response.headers)["Access-Control-Allow-Origin"] == "*"
    bad = await client.request(
        "/v1/track", {"userId": "u"}, key="wrong", headers={"Origin": "https://a.example"}
    )
    assert dict(bad.headers)["Access-Control-Allow-Origin"] == "*"
