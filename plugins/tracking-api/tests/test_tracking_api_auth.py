"""Write keys in the three forms SDKs send them, and what a bad key gets."""

from __future__ import annotations

from typing import Any


async def test_basic_auth_with_the_key_as_user_is_accepted(client: Any) -> None:
    response = await client.request("/v1/track", {"userId": "u", "event": "E"})
    assert response.status == 200, response.body
    assert client.answer(response) == {"success": True, "accepted": 1, "rejected": 0}


async def test_bearer_token_is_accepted(client: Any) -> None:
    response = await client.request("/v1/track", {"userId": "u", "event": "E"}, auth="bearer")
    assert response.status == 200


async def test_write_key_in_the_body_is_accepted_and_never_stored(client: Any) -> None:
    body = {
        "writeKey": client.key,
        "batch": [{"type": "track", "userId": "u", "event": "E", "writeKey": client.key}],
    }
    response = await client.request("/v1/batch", body, key=None)
    assert response.status == 200
    assert "writeKey" not in client.context.events[0]
    assert client.key not in repr(client.context.events)


async def test_wrong_key_is_401_declined_and_nothing_stored(client: Any) -> None:
    response = await client.request("/v1/track", {"userId": "u", "event": "E"}, key="nope")
    assert response.status == 401
    assert response.decline
    assert client.answer(response)["code"] == "invalid_write_key"
    assert client.context.appends == 0


async def test_wrong_key_in_body_is_401(client: Any) -> None:
    response = await client.request(
        "/v1/track", {"userId": "u", "event": "E", "writeKey": "nope"}, key=None
    )
    assert response.status == 401
    assert client.answer(response)["code"] == "invalid_write_key"
    assert client.context.appends == 0


async def test_missing_key_is_401_with_the_three_ways_to_send_it(client: Any) -> None:
    response = await client.request("/v1/track", {"userId": "u", "event": "E"}, key=None)
    assert response.status == 401
    error = client.answer(response)
    assert error["code"] == "missing_write_key"
    assert "Basic" in error["message"] and "Bearer" in error["message"]


async def test_unknown_auth_scheme_is_401(client: Any) -> None:
    response = await client.request(
        "/v1/track", {"userId": "u", "event": "E"}, key=None, headers={"Authorization": "Digest x"}
    )
    assert response.status == 401
    assert client.answer(response)["code"] == "invalid_authorization"


async def test_broken_basic_credentials_are_401(client: Any) -> None:
    response = await client.request(
        "/v1/track",
        {"userId": "u", "event": "E"},
        key=None,
        headers={"Authorization": "Basic !!!not-base64"},
    )
    assert response.status == 401


async def test_the_key_is_not_in_the_source_repr(client: Any) -> None:
    assert client.key not in repr(client.source)
    assert client.key not in repr(client.source.settings)
