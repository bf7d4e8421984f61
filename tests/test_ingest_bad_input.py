"""Bad input over real HTTP: the status, the JSON error body, and a log left untouched."""

from __future__ import annotations

import base64
import gzip
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from headwater.testing import TEST_WRITE_KEY, DaemonProcess

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{TEST_WRITE_KEY}:".encode()).decode()}
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with DaemonProcess(workdir=tmp_path_factory.mktemp("bad-input")) as running:
        yield running


@pytest.fixture(scope="module")
def http(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with daemon.client() as client:
        yield client


def counts(daemon: DaemonProcess) -> tuple[int, int]:
    with daemon.open_log() as log:
        stats = log.stats()
    return stats.events, stats.rejected


def event(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": f"u{n}", "event": "E", **extra}


def gzip_bomb() -> bytes:
    return gzip.compress(msgspec.json.encode({"batch": [event()], "pad": " " * 50_000_000}))


CASES: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    ("not json", "/v1/batch", JSON, b'{"batch": [', 400, "invalid_json"),
    ("empty body", "/v1/track", JSON, b"", 400, "invalid_json"),
    ("json array", "/v1/batch", JSON, b"[]", 400, "invalid_body"),
    ("batch not a list", "/v1/batch", JSON, b'{"batch": {}}', 400, "invalid_body"),
    (
        "wrong key",
        "/v1/track",
        {"Authorization": "Bearer not-the-key"},
        msgspec.json.encode(event()),
        401,
        "invalid_write_key",
    ),
    (
        "no key",
        "/v1/batch",
        {"Content-Type": "application/json"},
        msgspec.json.encode({"batch": [event()]}),
        401,
        "missing_write_key",
    ),
    (
        "wrong key in body",
        "/v1/batch",
        {},
        msgspec.json.encode({"batch": [event()], "writeKey": "nope"}),
        401,
        "invalid_write_key",
    ),
    (
        "unknown auth scheme",
        "/v1/track",
        {"Authorization": "Digest abc"},
        msgspec.json.encode(event()),
        401,
        "invalid_authorization",
    ),
    (
        "body over 500 KB",
        "/v1/batch",
        JSON,
        msgspec.json.encode(
            {"batch": [event(i, properties={"p": "x" * 1000}) for i in range(600)]}
        ),
        413,
        "request_too_large",
    ),
    (
        "gzip bomb",
        "/v1/batch",
        {**JSON, "Content-Encoding": "gzip"},
        gzip_bomb(),
        413,
        "request_too_large",
    ),
    (
        "over 2500 events",
        "/v1/batch",
        JSON,
        msgspec.json.encode({"batch": [{"type": "track"}] * 2501}),
        413,
        "too_many_events",
    ),
    (
        "single event over 32 KB",
        "/v1/track",
        JSON,
        msgspec.json.encode(event(properties={"p": "x" * 40_000})),
        413,
        "event_too_large",
    ),
    (
        "unknown encoding",
        "/v1/batch",
        {**JSON, "Content-Encoding": "br"},
        b"x",
        415,
        "unsupported_encoding",
    ),
    (
        "corrupt gzip",
        "/v1/batch",
        {**JSON, "Content-Encoding": "gzip"},
        b"\x1f\x8b\x08\x00garbage",
        400,
        "invalid_encoding",
    ),
    ("unknown path", "/v2/track", JSON, b"{}", 404, "not_found"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_gets_a_clear_error_and_stores_nothing(
    daemon: DaemonProcess,
    http: httpx.Client,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    before = counts(daemon)
    response = http.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert set(error) == {"code", "message"}
    assert error["code"] == code
    assert error["message"]
    assert TEST_WRITE_KEY not in response.text
    assert counts(daemon) == before


@pytest.mark.timeout(30)
def test_wrong_method_is_405_with_allow(daemon: DaemonProcess, http: httpx.Client) -> None:
    response = http.get("/v1/batch")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.timeout(30)
def test_a_huge_declared_body_is_refused_before_reading(daemon: DaemonProcess) -> None:
    before = counts(daemon)
    host, port = daemon.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000000000\r\n\r\n{"batch": ['
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"request_too_large"' in answer
    assert counts(daemon) == before


@pytest.mark.timeout(30)
def test_malformed_http_is_400(daemon: DaemonProcess) -> None:
    host, port = daemon.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")


@pytest.mark.timeout(30)
def test_invalid_items_go_to_the_rejected_table_valid_ones_to_the_log(
    daemon: DaemonProcess, http: httpx.Client
) -> None:
    events_before, rejected_before = counts(daemon)
    body = {"batch": [event(1, messageId="ok-1"), {"type": "track", "event": "anonymous"}, 7]}
    response = http.post("/v1/batch", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == 2
    assert counts(daemon) == (events_before + 1, rejected_before + 2)
    reasons = [item.reason for item in daemon.rejected()[-2:]]
    assert "`userId` or `anonymousId` is required" in reasons[0]
    assert [item.raw for item in daemon.rejected()[-1:]] == [7]


@pytest.mark.timeout(30)
def test_an_integer_the_log_cannot_hold_rejects_that_event_only(
    daemon: DaemonProcess, http: httpx.Client
) -> None:
    events_before, rejected_before = counts(daemon)
    body = {"batch": [event(1), event(2, properties={"big": 2**70})]}
    response = http.post("/v1/batch", json=body, headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 1)
    assert counts(daemon) == (events_before + 1, rejected_before + 1)
    kept = daemon.rejected()[-1]
    assert kept.raw["properties"] == {"big": str(2**70)}
    assert "64-bit" in kept.reason
