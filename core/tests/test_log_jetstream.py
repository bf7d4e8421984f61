"""What is particular to the JetStream log backend: deduplication, partition subjects,
limits, errors, several daemons on one stream, surviving a NATS crash. The behaviour shared
with LMDB is in test_log_interface.py."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from headwater.cli import cli
from headwater.config import ConfigError, config_from_dict
from headwater.log import (
    JetStreamLog,
    LmdbLog,
    LogError,
    LogFullError,
    LogRecord,
    open_log,
    partition_of,
)
from headwater.log._jetstream import with_seq
from headwater.log._kv_keys import escape, kv_key, split_kv_key, unescape
from headwater.log._nats_connect import NatsOptions, redact
from headwater.testing_nats import NatsServer, free_port, nats_server_binary

pytestmark = pytest.mark.timeout(60)
REQUIRE = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"


@pytest.fixture
def stream() -> str:
    return f"hwtest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def options(nats_url: str) -> NatsOptions:
    return NatsOptions(servers=(nats_url,))


@pytest.fixture
def jlog(options: NatsOptions, stream: str) -> Iterator[JetStreamLog]:
    log = JetStreamLog(options, stream)
    yield log
    log.drop()
    log.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test's own, for crashing it."""
    if nats_server_binary() is None:
        if REQUIRE:
            pytest.fail("nats-server is not installed and HEADWATER_REQUIRE_SERVICES=1")
        pytest.skip("nats-server is not installed")
    server = NatsServer(tmp_path / "store").start()
    yield server
    server.stop()


def track(i: int, user: str = "u1") -> dict[str, Any]:
    return {"type": "track", "event": "E", "messageId": f"m-{i}", "userId": user}


# -- deduplication and partitions -------------------------------------------------------


def test_a_retried_append_is_stored_once_and_answers_the_original_sequences(
    jlog: JetStreamLog,
) -> None:
    events = [track(i) for i in range(5)]
    first = jlog.append_sync("web", events)
    again = jlog.append_sync("web", events)
    assert (again.first_seq, again.last_seq) == (first.first_seq, first.last_seq)
    assert jlog.last_seq() == 5
    partly_new = jlog.append_sync("web", [track(4), track(5)])
    assert (partly_new.first_seq, partly_new.last_seq) == (5, 6)
    assert [r.event["messageId"] for r in jlog.scan()] == [f"m-{i}" for i in range(6)]


def test_events_without_a_message_id_are_all_kept(jlog: JetStreamLog) -> None:
    jlog.append_sync("web", [{"type": "track", "event": "E"}] * 3)
    assert jlog.last_seq() == 3


async def test_each_user_has_one_partition_subject(
    jlog: JetStreamLog, options: NatsOptions
) -> None:
    import nats

    events = [track(i, user=f"user-{i % 7}") for i in range(70)]
    await jlog.append("web", events)
    nc = await nats.connect(list(options.servers))
    try:
        js = nc.jetstream()
        subjects: dict[str, set[str]] = {}
        for seq in range(1, 71):
            msg = await js.get_msg(jlog.stream, seq)
            assert msg.data is not None
            user = msgspec.msgpack.decode(msg.data)[3]["userId"]
            subjects.setdefault(user, set()).add(str(msg.subject))
    finally:
        await nc.close()
    assert all(len(s) == 1 for s in subjects.values())
    for user, (subject,) in subjects.items():
        assert subject == f"{jlog.stream}.p.{partition_of({'userId': user}, jlog.partitions)}"


def test_partition_falls_back_to_anonymous_id_then_message_id() -> None:
    assert partition_of({"anonymousId": "a"}, 16) == partition_of({"userId": "a"}, 16)
    assert partition_of({"userId": "", "anonymousId": "a"}, 16) == partition_of({"userId": "a"}, 16)
    assert partition_of({"messageId": "m"}, 16) == partition_of({"userId": "m"}, 16)


def test_a_record_is_stored_as_the_lmdb_record_with_its_sequence_spliced_in() -> None:
    encode = msgspec.msgpack.encode
    for seq in (1, 127, 128, 65_535, 2**40):
        record = LogRecord(seq, "web", 1_700_000_000_000_000, {"type": "track", "n": [1]})
        published = encode(LogRecord(0, record.source, record.received_at, record.event))
        assert with_seq(published, seq) == encode(record)


@given(st.binary(max_size=40), st.binary(max_size=10))
def test_side_table_keys_round_trip_and_keep_prefixes(key: bytes, prefix: bytes) -> None:
    assert unescape(escape(key)) == key
    assert split_kv_key(kv_key(b"dead_letters", key)) == (b"dead_letters", key)
    if prefix and key.startswith(prefix):
        assert escape(key).startswith(escape(prefix))
    assert "." not in escape(key) and escape(key)


# -- limits and errors ----------------------------------------------------------------------


def test_a_full_stream_refuses_appends_with_log_full(options: NatsOptions, stream: str) -> None:
    log = JetStreamLog(options, stream, max_size=4096)
    try:
        with pytest.raises(LogFullError, match="max_size"):
            for i in range(100):
                log.append_sync("web", [track(i * 10 + j) for j in range(10)])
        stored = log.stats().events
        assert stored > 0
        with pytest.raises(LogFullError):
            log.append_sync("web", [track(10_000)])
        assert log.stats().events == stored
    finally:
        log.drop()
        log.close()


def test_an_unreachable_server_fails_fast_naming_it() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(LogError, match=f"127.0.0.1:{port}.*\\[log\\] servers"):
        JetStreamLog(NatsOptions(servers=(f"nats://u:secret@127.0.0.1:{port}",)), "hw")
    assert time.monotonic() - started < 15


def test_passwords_in_server_urls_are_redacted() -> None:
    assert redact("nats://user:pw@host:4222") == "nats://***@host:4222"
    assert redact("tls://host:4222") == "tls://host:4222"


def test_reading_a_stream_that_does_not_exist_says_how_to_create_it(
    options: NatsOptions, stream: str
) -> None:
    with pytest.raises(LogError, match=r"no JetStream stream .* `headwater serve`"):
        JetStreamLog(options, stream, readonly=True)


def test_every_daemon_must_use_the_streams_partition_count(
    options: NatsOptions, stream: str
) -> None:
    first = JetStreamLog(options, stream, partitions=4)
    try:
        with pytest.raises(LogError, match=r"partitions = 8, but .* in 4.*nats kv del"):
            JetStreamLog(options, stream, partitions=8)
        with JetStreamLog(options, stream) as unset:
            assert unset.partitions == 4, "a log opened without a count adopts the stream's"
        with JetStreamLog(options, stream, readonly=True) as reader:
            assert reader.partitions == 4
    finally:
        first.drop()
        first.close()


def test_a_bad_stream_name_is_refused() -> None:
    with pytest.raises(LogError, match="stream name"):
        JetStreamLog(NatsOptions(), "has.dots")


def test_the_config_checks_the_jetstream_options() -> None:
    with pytest.raises(ConfigError, match="needs servers"):
        config_from_dict({"log": {"backend": "jetstream"}}, file="h.toml")
    with pytest.raises(ConfigError, match="replicas = 9"):
        config_from_dict(
            {"log": {"backend": "jetstream", "servers": ["nats://h:4222"], "replicas": 9}}
        )
    with pytest.raises(ConfigError, match="servr"):
        config_from_dict({"log": {"backend": "jetstream", "servr": []}})


def test_without_the_nats_client_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "nats", None)
    with pytest.raises(LogError, match=r"headwater\[jetstream\]"):
        JetStreamLog(NatsOptions(), "hw")


def test_open_log_picks_the_backend_of_the_config(
    tmp_path: Path, nats_url: str, stream: str
) -> None:
    lmdb = open_log(config_from_dict({"workspace": {"data_dir": str(tmp_path)}}))
    assert isinstance(lmdb, LmdbLog)
    lmdb.close()
    config = config_from_dict(
        {"log": {"backend": "jetstream", "servers": [nats_url], "stream": stream}}
    )
    with open_log(config) as log:
        assert isinstance(log, JetStreamLog)
        log.drop()


def test_log_stats_command_reads_a_jetstream_log(
    tmp_path: Path, jlog: JetStreamLog, nats_url: str
) -> None:
    jlog.append_sync("web", [track(i) for i in range(3)])
    config = tmp_path / "headwater.toml"
    config.write_text(
        f'[log]\nbackend = "jetstream"\nservers = ["{nats_url}"]\nstream = "{jlog.stream}"\n'
    )
    result = CliRunner().invoke(cli, ["log", "stats", "-c", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    stats = msgspec.json.decode(result.output)
    assert (stats["events"], stats["first_seq"], stats["last_seq"]) == (3, 1, 3)


# -- several daemons, crashes ---------------------------------------------------------------


def test_two_daemons_share_events_cursors_and_side_tables(
    jlog: JetStreamLog, options: NatsOptions
) -> None:
    other = JetStreamLog(options, jlog.stream)
    try:
        a = jlog.append_sync("web", [track(1)])
        b = other.append_sync("web", [track(2)])
        assert (a.first_seq, b.first_seq) == (1, 2)
        other.set_cursor("dest:webhook", 2)
        other.put_value(b"replays", b"job-1", b"running")
        assert jlog.get_cursor("dest:webhook") == 2
        assert jlog.items(b"replays") == [(b"job-1", b"running")]
        assert [r.seq for r in jlog.scan()] == [1, 2]
    finally:
        other.close()


def test_blocking_calls_work_from_inside_an_event_loop(jlog: JetStreamLog) -> None:
    async def inside() -> list[int]:
        await jlog.append("web", [track(1), track(2)])
        jlog.set_cursor("c", 1)
        return [r.seq for r in jlog.scan()]

    assert asyncio.run(inside()) == [1, 2]


@pytest.mark.timeout(90)
def test_an_append_waiting_through_a_nats_crash_completes_after_restart(
    own_server: NatsServer,
) -> None:
    log = JetStreamLog(NatsOptions(servers=(own_server.url,)), "hw", ack_timeout=45)
    try:
        log.append_sync("web", [track(i) for i in range(100)])
        own_server.kill()
        outcome: list[Any] = []

        def append_during_outage() -> None:
            try:
                outcome.append(log.append_sync("web", [track(i) for i in range(100, 200)]))
            except Exception as exc:  # reported below
                outcome.append(exc)

        writer = threading.Thread(target=append_during_outage)
        writer.start()
        time.sleep(1.0)
        assert not outcome, "the append must wait for JetStream, not answer during the outage"
        own_server.start()
        writer.join(60)
        assert outcome and not isinstance(outcome[0], Exception), outcome
        assert (outcome[0].first_seq, outcome[0].last_seq) == (101, 200)
        assert [r.event["messageId"] for r in log.scan()] == [f"m-{i}" for i in range(200)]
    finally:
        log.close()


def test_tls_and_credentials_files_are_checked_before_connecting(tmp_path: Path) -> None:
    from headwater.log._nats_connect import tls_context

    assert tls_context(NatsOptions()) is None
    assert tls_context(NatsOptions(servers=("tls://nats.example:4222",))) is not None
    with pytest.raises(LogError, match=r"tls_ca = .*no such file"):
        tls_context(NatsOptions(tls=True, tls_ca=str(tmp_path / "missing.pem")))
    with pytest.raises(LogError, match=r"credentials = .*\.creds file"):
        JetStreamLog(NatsOptions(credentials=str(tmp_path / "missing.creds")), "hw")
