"""Units of the conformance suite that its end-to-end runs do not pin one by one: which
config key names count as secrets, where leaks are found, and the loopback server."""

from __future__ import annotations

import gzip
import logging
import socket
import sys

import httpx
import pytest

from headwater_spec import ConnectorSpec
from headwater_spec.conformance import (
    MemoryContext,
    Reply,
    ServiceServer,
    SimulatedCrash,
    refused_url,
    sample_events,
)
from headwater_spec.conformance._leaks import Secret, leaks, log_texts, secrets_in
from headwater_spec.conformance._spec_checks import _looks_secret


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apikey",
        "write_keys",
        "auth_token",
        "password",
        "client_secret",
        "key",
        "private_key",
        "credentials",
        "passphrase",
    ],
)
def test_names_that_hold_secrets(key: str) -> None:
    assert _looks_secret(key)


@pytest.mark.parametrize(
    "key",
    [
        "primary_key",
        "partition_key",
        "cursor_key",
        "key_column",
        "token_url",
        "url",
        "access_key_id",
        "password_file",
        "batch_size",
        "monkey",
    ],
)
def test_names_that_only_look_like_secrets(key: str) -> None:
    assert not _looks_secret(key)


SPEC = ConnectorSpec.from_dict(
    {
        "name": "t",
        "version": "1",
        "direction": "out",
        "regions": {"any": {}},
        "config": {
            "type": "object",
            "properties": {
                "token": {"type": "string", "secret": True},
                "keys": {"type": "array", "secret": True},
            },
        },
    }
)


def test_short_secret_values_are_refused_as_unsearchable() -> None:
    found, problems = secrets_in({"token": "abc", "keys": ["long-enough-1", "long-enough-2"]}, SPEC)
    assert [s.value for s in found] == ["long-enough-1", "long-enough-2"]
    assert problems and "distinctive string of 6+ characters" in problems[0]


def test_a_secret_in_a_log_records_extra_field_is_found() -> None:
    record = logging.makeLogRecord({"msg": "sending", "name": "x", "auth": "Bearer tok-123456"})
    problems = leaks([Secret("token", "tok-123456")], log_texts([record]))
    assert len(problems) == 1 and "a log record of logger 'x'" in problems[0]
    assert repr(Secret("token", "tok-123456")) == "Secret('token')"


def test_a_secret_in_a_logged_exception_is_found() -> None:
    try:
        raise ValueError("bad key tok-123456")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", None, True)
        record.exc_info = sys.exc_info()
    assert leaks([Secret("token", "tok-123456")], log_texts([record]))


def test_server_records_decompressed_bodies_and_answers_as_told() -> None:
    with ServiceServer() as server:
        server.reply = Reply(503, b"busy", (("Retry-After", "3"),))
        answer = httpx.post(
            f"{server.url}/x?a=1",
            content=gzip.compress(b'{"k": 1}'),
            headers={"Content-Encoding": "gzip"},
        )
        assert (answer.status_code, answer.text, answer.headers["retry-after"]) == (
            503,
            "busy",
            "3",
        )
        (request,) = server.received()
        assert (request.path, request.params(), request.json()) == ("/x", {"a": "1"}, {"k": 1})
        server.reply = Reply(drop=True)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(server.url)
        server.reply = Reply(hang=True)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(server.url, timeout=0.3)


def test_refused_url_refuses() -> None:
    port = int(refused_url().rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_memory_context_keeps_events_and_checkpoint_together() -> None:
    context = MemoryContext(endpoint="http://127.0.0.1:9")
    context.crash_after_stores = 2
    await context.emit_and_checkpoint(sample_events(["track"]), b"1")
    with pytest.raises(SimulatedCrash):
        await context.emit_and_checkpoint(sample_events(["identify"], n=1), b"2")
    assert (len(context.events), context.checkpoint, await context.load_checkpoint()) == (
        2,
        b"2",
        b"2",
    )
    receipt = await context.append(
        [{"type": "track", "userId": "u", "event": "E"}, {"type": "nope"}]
    )
    assert (receipt.accepted, len(context.invalid)) == (1, 1)
