"""Dead-letter listing, counting and purging in bounded memory (a destination may hold
millions of dead letters): pages by seq cursor, key-only counts, chunked purge; on both log
backends, with the table filled directly through the log's side-table API."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from headwater.cli import cli
from headwater.config import load_config
from headwater.log import AnyLog, JetStreamLog, LmdbLog, now_us
from headwater.log._nats_connect import NatsOptions
from headwater.plugins import load_plugins
from headwater.replay import REPLAYS, ReplayJob
from headwater.replay._jobs import list_jobs, load_job
from headwater.replay._records import encode_job, job_key, retry_namespace
from headwater.router import (
    DEAD_LETTERS,
    DESTINATIONS,
    RETRIES,
    DeadLetter,
    PendingRecord,
    Router,
    _deadletters,
    count_dead_letters,
    dead_letter_page,
    purge_dead_letters,
    read_status,
    request_redrive,
)
from headwater.router._admin import add_admin_routes
from headwater.router._records import encode, event_key, event_prefix, redrive_key
from headwater.shared_replay._redrive import CONVERTING, redrive_as_job
from headwater_spec import HttpRequest

pytestmark = pytest.mark.timeout(120)

# LMDB takes the size; JetStream writes a KV entry per round trip and reads every
# key of the table for a page, so it gets fewer, bigger dead letters: about the same bytes.
SIZES = {"lmdb": 20_000, "jetstream": 1_500}
PADS = {"lmdb": 300, "jetstream": 4_000}
LIMITS = {"lmdb": 500, "jetstream": 100}


def letter(
    destination: str, seq: int, at: int, pad: int = 300, event: dict[str, Any] | None = None
) -> DeadLetter:
    return DeadLetter(
        destination=destination,
        seq=seq,
        reason="HTTP 400: bad",
        attempts=1,
        first_attempt_at=at,
        last_attempt_at=at,
        source="web",
        received_at=at - 1000,
        event=event
        or {"type": "track", "messageId": f"m{seq}", "userId": f"u{seq % 7}", "pad": "x" * pad},
    )


def fill(log: AnyLog, destination: str, seqs: range, at: int, pad: int = 300) -> None:
    """Dead letters straight into the table, a chunk per write, highest seqs first (so
    key order differs from write order on JetStream)."""
    chunk: list[tuple[bytes, bytes, bytes | None]] = []
    for seq in reversed(seqs):
        chunk.append(
            (DEAD_LETTERS, event_key(destination, seq), encode(letter(destination, seq, at, pad)))
        )
        if len(chunk) == 1000:
            log.write_batch(chunk)
            chunk = []
    if chunk:
        log.write_batch(chunk)


def peak_bytes(call: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_pages_cover_every_dead_letter_once_in_order_in_bounded_memory(
    backend: tuple[str, AnyLog],
) -> None:
    name, log = backend
    n = SIZES[name]
    at = now_us() - 10_000_000
    # Odd seqs: the cursor is a seq, not an index.
    fill(log, "hook", range(1, 2 * n, 2), at, PADS[name])
    fill(log, "aaa", range(1, 4), at)  # neighbours on either side in key order
    fill(log, "zzz", range(1, 4), at)
    odd = list(range(1, 2 * n, 2))
    table_bytes = n * len(encode(letter("hook", 1, at, PADS[name])))

    assert count_dead_letters(log, "hook") == n
    assert count_dead_letters(log, "aaa") == 3 and count_dead_letters(log, "nope") == 0
    counted, peak = peak_bytes(lambda: count_dead_letters(log, "hook"))
    # Bounded by a read chunk of keys (JetStream: 1024 messages, headers only), not the table.
    assert counted == n and peak < table_bytes / 5, (peak, table_bytes)

    limit = LIMITS[name]
    seen: list[int] = []
    after: int | None = None
    peaks = []
    while True:
        page, peak = peak_bytes(
            lambda after=after: dead_letter_page(log, "hook", limit=limit, after=after)
        )
        peaks.append(peak)
        assert len(page.letters) <= limit
        assert all(d.destination == "hook" for d in page.letters)
        seen += [d.seq for d in page.letters]
        if page.next is None:
            break
        assert page.next == page.letters[-1].seq
        after = page.next
    assert seen == odd
    assert len(peaks) == -(-n // limit)
    assert max(peaks) < table_bytes / 5, (max(peaks), table_bytes)
    # Exactly a page's worth: the last full page says there is no next one.
    exact = dead_letter_page(log, "hook", limit=2, after=odd[-3])
    assert [d.seq for d in exact.letters] == odd[-2:] and exact.next is None
    assert dead_letter_page(log, "hook", after=odd[-1]).letters == []
    assert [d.seq for d in dead_letter_page(log, "hook", limit=3, after=2).letters] == [3, 5, 7]
    with pytest.raises(ValueError, match="limit"):
        dead_letter_page(log, "hook", limit=0)


def test_status_counts_and_purge_stream_and_keep_what_came_after(
    backend: tuple[str, AnyLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, log = backend
    monkeypatch.setattr(_deadletters, "PURGE_CHUNK", LIMITS[name])  # a JetStream table is short
    n = SIZES[name]
    at = now_us() - 10_000_000
    fill(log, "hook", range(1, n + 1), at, PADS[name])
    fill(log, "other", range(1, 11), at)
    parked = PendingRecord(seq=n + 1, user="u", source="web", received_at=at - 5, event={})
    log.write_batch(
        [(RETRIES, event_key("hook", seq), encode(parked)) for seq in range(n + 1, n + 4)]
    )
    status = read_status(log, "hook", connector="webhook")
    assert (status.dead_letters, status.pending_retries) == (n, 3)
    assert status.lag_seconds >= 10.0  # the parked event's received_at, read from one entry
    table_bytes = n * len(encode(letter("hook", 1, at, PADS[name])))
    _, peak = peak_bytes(lambda: read_status(log, "hook", connector="webhook"))
    assert peak < table_bytes / 3, (peak, table_bytes)

    # A dead letter recorded after the purge started (a later last attempt) stays; on
    # JetStream a walk may or may not see it, either way it must not be deleted.
    fill(log, "hook", range(n + 10, n + 11), now_us() + 60_000_000)
    purged, peak = peak_bytes(lambda: purge_dead_letters(log, "hook"))
    assert purged == n
    assert peak < table_bytes / 3, (peak, table_bytes)
    assert [d.seq for d in dead_letter_page(log, "hook").letters] == [n + 10]
    assert count_dead_letters(log, "other") == 10
    assert count_dead_letters(log, "hook") == 1


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "headwater.toml"
    path.write_text(
        '[workspace]\ndata_dir = "data"\n\n[destinations.hook]\nconnector = "recorder"\n'
    )
    return path


def test_cli_list_pages_with_after_and_json_next(tmp_path: Path) -> None:
    n = SIZES["lmdb"]
    path = write_config(tmp_path)
    with LmdbLog(tmp_path / "data", sync=False) as log:
        fill(log, "hook", range(1, n + 1), now_us())
    runner = CliRunner()
    first = runner.invoke(cli, ["dlq", "list", "hook", "-c", str(path)])
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert len([line for line in lines if line.startswith("seq ")]) == 100  # the default
    assert lines[0].startswith("seq 1 ") and lines[99].startswith("seq 100 ")
    assert lines[-1] == "more: headwater dlq list hook --limit 100 --after 100"

    seen: list[int] = []
    after: list[str] = []
    while True:
        out = runner.invoke(
            cli,
            ["dlq", "list", "hook", "-c", str(path), "--format", "json", "--limit", "7000", *after],
        )
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        seen += [d["seq"] for d in data["dead_letters"]]
        if data["next"] is None:
            break
        after = ["--after", str(data["next"])]
    assert seen == list(range(1, n + 1))

    last = runner.invoke(cli, ["dlq", "list", "hook", "-c", str(path), "--after", str(n - 1)])
    assert last.output.startswith(f"seq {n} ") and "more:" not in last.output
    bad = runner.invoke(cli, ["dlq", "list", "hook", "-c", str(path), "--limit", "0"])
    assert bad.exit_code == 2

    table = runner.invoke(cli, ["destinations", "-c", str(path), "--format", "json"])
    assert json.loads(table.output)["destinations"][0]["dead_letters"] == n
    purged = runner.invoke(cli, ["dlq", "purge", "hook", "-c", str(path), "--yes"])
    assert purged.exit_code == 0 and f"{n} dead letters deleted" in purged.output


class Routes:
    def __init__(self) -> None:
        self.handlers: dict[tuple[str, str], Any] = {}

    def add(self, method: str, path: str, handler: Any) -> None:
        self.handlers[(method, path)] = handler

    def call(self, method: str, path: str, query: str = "") -> tuple[int, Any]:
        request = HttpRequest(method=method, path=path, query=query, params={"id": "hook"})
        response = asyncio.run(self.handlers[(method, path)](request))
        return response.status, msgspec.json.decode(response.body)


def test_admin_api_pages_with_limit_and_after_and_purges(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    with LmdbLog(tmp_path / "data", sync=False) as log:
        fill(log, "hook", range(1, 2_501), now_us())
        router = Router(log, load_config(path), load_plugins(only=set()))
        routes = Routes()
        add_admin_routes(routes, router)
        letters = "/admin/destinations/{id}/dead-letters"
        status, body = routes.call("GET", letters)
        assert status == 200 and body["destination"] == "hook"
        assert [d["seq"] for d in body["dead_letters"]] == list(range(1, 101))
        assert body["next"] == 100
        seen: list[int] = []
        query = "limit=1000"
        while True:
            status, body = routes.call("GET", letters, query)
            assert status == 200, body
            seen += [d["seq"] for d in body["dead_letters"]]
            if body["next"] is None:
                break
            query = f"limit=1000&after={body['next']}"
        assert seen == list(range(1, 2_501))
        for bad in ("limit=0", "limit=x", "after=-1", "limit=10001"):
            assert routes.call("GET", letters, bad)[0] == 400, bad
        status, body = routes.call("GET", "/admin/destinations")
        assert body["destinations"][0]["dead_letters"] == 2_500
        status, body = routes.call("DELETE", letters)
        assert (status, body["purged"]) == (200, 2_500)
        assert count_dead_letters(log, "hook") == 0


async def test_jetstream_redrive_streams_into_a_job_and_resumes_an_interrupted_one(
    nats_url: str,
) -> None:

    options = NatsOptions(servers=(nats_url,))
    stream = f"hwtest-{uuid.uuid4().hex[:12]}"
    log = JetStreamLog(options, stream)
    try:
        at = now_us() - 10_000_000
        fill(log, "hook", range(1, 301), at)
        request_redrive(log, "hook")
        fill(log, "hook", range(400, 401), now_us() + 60_000_000)  # after the request
        # A daemon was killed converting: the marked job and a third of its retries are
        # written, and the first 50 of those dead letters already deleted.
        job = ReplayJob(id="1", destination="hook", first_seq=1, last_seq=0, state="paused")
        job.error = CONVERTING
        namespace = retry_namespace("1")
        parked = PendingRecord(seq=0, user="u", source="web", received_at=at, event={})
        ops: list[tuple[bytes, bytes, bytes | None]] = [(REPLAYS, job_key("1"), encode_job(job))]
        for seq in range(1, 101):
            parked.seq = seq
            ops.append((RETRIES, event_key(namespace, seq), encode(parked)))
        ops += [(DEAD_LETTERS, event_key("hook", seq), None) for seq in range(1, 51)]
        log.write_batch(ops)

        resumed = await redrive_as_job(log, "hook")
        assert resumed is not None and resumed.id == "1" and resumed.pending == 300
        assert [j.id for j in list_jobs(log)] == ["1"]
        stored = load_job(log, "1")
        assert (stored.state, stored.error, stored.pending) == ("running", "", 300)
        assert log.count(RETRIES, event_prefix(namespace)) == 300
        assert [d.seq for d in dead_letter_page(log, "hook").letters] == [400]
        assert log.get_value(DESTINATIONS, redrive_key("hook")) is None
        assert await redrive_as_job(log, "hook") is None  # no request left
    finally:
        log.close()
        with JetStreamLog(options, stream) as cleanup:
            cleanup.drop()
