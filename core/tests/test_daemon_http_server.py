"""The hand-written HTTP/1.1 server, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from headwater.daemon import HttpServer
from headwater_spec import HttpRequest, HttpResponse

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


async def echo(request: HttpRequest) -> HttpResponse:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path == "/slow":
        await asyncio.sleep(0.3)
    return HttpResponse.json(
        {"path": request.path, "query": request.query, "size": len(request.body)}
    )


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer(echo, max_body=1000, keepalive_timeout=0.5)
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.stop(1.0)


async def connect(server: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(server.host, server.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.mark.timeout(10)
async def test_keep_alive_serves_several_requests_on_one_connection(server: HttpServer) -> None:
    reader, writer = await connect(server)
    for n in range(3):
        writer.write(post(f"/r{n}?x=1", b"abc"))
        status, headers, body = await read_response(reader)
        assert status == 200
        assert body == b'{"path":"/r%d","query":"x=1","size":3}' % n
        assert "connection" not in headers
    writer.close()


@pytest.mark.timeout(10)
async def test_pipelined_requests_are_answered_in_order(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/slow", b"1") + post("/fast", b"22") + post("/fast2", b""))
    paths = [(await read_response(reader))[2] for _ in range(3)]
    assert [p.split(b",")[0] for p in paths] == [
        b'{"path":"/slow"',
        b'{"path":"/fast"',
        b'{"path":"/fast2"',
    ]
    writer.close()


@pytest.mark.timeout(10)
async def test_expect_100_continue_is_answered(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"data")
    status, _, body = await read_response(reader)
    assert status == 200 and b'"size":4' in body
    writer.close()


@pytest.mark.timeout(10)
async def test_chunked_bodies_are_read(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    status, _, body = await read_response(reader)
    assert status == 200 and b'"size":5' in body
    writer.close()


@pytest.mark.timeout(10)
async def test_http_10_keep_alive_is_honoured(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    _, headers, _ = await read_response(reader)
    assert headers["connection"] == "keep-alive"
    writer.write(b"GET /b HTTP/1.0\r\n\r\n")
    _, headers, _ = await read_response(reader)
    assert headers["connection"] == "close"
    assert await reader.read() == b""
    writer.close()


@pytest.mark.timeout(10)
async def test_a_body_over_the_cap_gets_413_and_the_connection_stays_usable(
    server: HttpServer,
) -> None:
    reader, writer = await connect(server)
    writer.write(post("/big", b"x" * 1500))
    status, _, body = await read_response(reader)
    assert status == 413 and b"request_too_large" in body
    writer.write(post("/after", b"ok"))
    status, _, _ = await read_response(reader)
    assert status == 200
    writer.close()


@pytest.mark.timeout(10)
async def test_a_chunked_body_over_the_cap_gets_413(server: HttpServer) -> None:
    reader, writer = await connect(server)
    chunk = b"x" * 600
    writer.write(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"258\r\n" + chunk + b"\r\n" + b"258\r\n" + chunk + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    status, _, _ = await read_response(reader)
    assert status == 413
    writer.close()


@pytest.mark.timeout(10)
async def test_a_failing_handler_gets_500_json_and_the_server_lives_on(
    server: HttpServer,
) -> None:
    reader, writer = await connect(server)
    writer.write(post("/boom", b""))
    status, headers, body = await read_response(reader)
    assert status == 500 and headers["content-type"] == "application/json"
    assert b'"internal_error"' in body
    writer.write(post("/fine", b""))
    assert (await read_response(reader))[0] == 200
    writer.close()


@pytest.mark.timeout(10)
async def test_idle_keep_alive_connections_are_closed(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(post("/a", b""))
    await read_response(reader)
    assert await asyncio.wait_for(reader.read(), 3) == b""  # closed after 0.5 s idle
    writer.close()


@pytest.mark.timeout(10)
async def test_stop_finishes_the_request_in_flight_then_closes(server: HttpServer) -> None:
    reader, writer = await connect(server)
    idle_reader, idle_writer = await connect(server)
    writer.write(post("/slow", b""))
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(server.stop(5.0))
    status, headers, _ = await read_response(reader)
    assert status == 200
    assert headers["connection"] == "close"
    assert await idle_reader.read() == b""  # the idle one was closed at once
    await stopping
    with pytest.raises(OSError):
        await asyncio.open_connection(server.host, server.port)
    writer.close()
    idle_writer.close()


@pytest.mark.timeout(10)
async def test_a_request_that_never_finishes_arriving_is_cut_off(server: HttpServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
    assert await asyncio.wait_for(reader.read(), 3) == b""  # closed after 0.5 s
    writer.close()


@pytest.mark.timeout(10)
async def test_a_refusal_never_overtakes_the_answer_to_an_earlier_request(
    server: HttpServer,
) -> None:
    reader, writer = await connect(server)
    writer.write(post("/slow", b"1") + b"POST /huge HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n")
    first_status, _, first_body = await read_response(reader)
    second_status, second_headers, _ = await read_response(reader)
    assert (first_status, second_status) == (200, 413)
    assert b'"/slow"' in first_body
    assert second_headers["connection"] == "close"
    writer.close()


@pytest.mark.timeout(10)
async def test_garbage_after_a_request_still_gets_that_request_answered(
    server: HttpServer,
) -> None:
    reader, writer = await connect(server)
    writer.write(post("/slow", b"1") + b"NOT HTTP AT ALL\r\n\r\n")
    assert (await read_response(reader))[0] == 200
    status, headers, _ = await read_response(reader)
    assert status == 400 and headers["connection"] == "close"
    writer.close()
