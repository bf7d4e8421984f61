"""Swapping tools without a restart, end to end against a real `headwater serve`:

ingest 50k events with webhook destination A; connect destination B (``start = "now"``)
with `headwater reload`; replay the history to B with `headwater replay` while ingestion
goes on; disconnect A with another reload. B ends with every event exactly once, in
per-user order (within the replayed history and within its live traffic), A kept
receiving until it was disconnected, and ingestion went on while the replay ran.

Ingest latency before and while the replay runs is measured and printed (``pytest -s``),
not asserted: the machine is shared and its timings are noise. The test asserts that
ingest requests were answered while the replay ran and that none failed (a 30 s client
timeout); the cost of a replay to ingest is a figure of ``benchmarks/bench_replay.py``.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from headwater.log import iso_us, now_us
from headwater.testing import TEST_ADMIN_TOKEN, DaemonProcess
from headwater.testing_webhook import SinkProcess, WebhookSink

WRITE_KEY = "swap-test-key"
USERS = 100
HISTORY = 50_000
BATCH = 500
pytestmark = pytest.mark.timeout(300)


def config(**destinations: str) -> str:
    body = f"""
[workspace]
name = "swap"

[server]
admin_token = "{TEST_ADMIN_TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]
"""
    for name, url in destinations.items():
        body += f'\n[destinations.{name}]\nconnector = "webhook"\nurl = "{url}/{name}"\n'
    return body


def events(start: int, count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Step",
            "userId": f"user-{n % USERS}",
            "messageId": f"{prefix}-{n}",
            "properties": {"n": n},
        }
        for n in range(start, start + count)
    ]


class Ingestor(threading.Thread):
    """Sends 100-event batches back to back until stopped, timing every request."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=30.0)
        self.sent: list[str] = []
        self.latencies: list[tuple[float, float]] = []
        """(time.time() at the answer, seconds) per request."""
        self.failures: list[str] = []
        self.stop_flag = threading.Event()
        self.n = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            batch = events(self.n, 100, "live")
            started = time.perf_counter()
            try:
                response = self.client.post("/v1/batch", json={"batch": batch})
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
                continue
            self.latencies.append((time.time(), elapsed))
            self.sent += [e["messageId"] for e in batch]
            self.n += 100
            time.sleep(0.01)

    def between(self, start: float, end: float) -> list[float]:
        return [s for at, s in self.latencies if start <= at <= end]

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(30)
        self.client.close()


def settled(count: Callable[[], int], quiet: float = 0.5, limit: float = 10.0) -> int:
    """``count()`` once it has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last = count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = count()
        if now == last:
            return now
        last = now
    raise AssertionError(f"still changing after {limit} s")


def per_user(ids: list[str], prefix: str) -> dict[str, list[int]]:
    """The event numbers of each user, in arrival order, for ids with ``prefix``."""
    out: dict[str, list[int]] = {}
    for mid in ids:
        kind, _, number = mid.rpartition("-")
        if kind != prefix:
            continue
        n = int(number)
        out.setdefault(f"user-{n % USERS}", []).append(n)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_connect_b_replay_history_then_disconnect_a(
    headwater_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    sink_b = SinkProcess(tmp_path / "b.json")
    try:
        with WebhookSink() as sink_a:
            run_swap(headwater_daemon, sink_a, sink_b)
    finally:
        sink_b.kill()


def run_swap(
    headwater_daemon: Callable[..., DaemonProcess], sink_a: WebhookSink, sink_b: SinkProcess
) -> None:
    daemon = headwater_daemon(config(a=sink_a.url))
    admin = daemon.client(headers=daemon.admin_headers())

    # -- 50k events of history, delivered live to A only -----------------------------
    history: list[str] = []
    with daemon.client(auth=(WRITE_KEY, "")) as ingest:
        for start in range(0, HISTORY, BATCH):
            batch = events(start, BATCH, "hist")
            assert ingest.post("/v1/batch", json={"batch": batch}).status_code == 200
            history += [e["messageId"] for e in batch]
    sink_a.wait_for_events(HISTORY, timeout=120)

    # -- connect B at runtime: it starts at "now", so it gets none of the history ----
    daemon.config_path.write_text(config(a=sink_a.url, b=sink_b.url))
    reloaded = daemon.cli("reload", "--format", "json")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert json.loads(reloaded.stdout)["changes"]["destinations"]["added"] == ["b"]
    status_b = admin.get("/admin/destinations/b").json()
    assert status_b["cursor"] == HISTORY + 1
    time.sleep(0.01)
    connected_at = now_us()  # every history event was received before this
    time.sleep(0.01)

    # -- live traffic from here on; a baseline of its latency before the replay -----
    live = Ingestor(daemon.url)
    live.start()
    time.sleep(2.0)
    replay_started = time.time()
    started = daemon.cli(
        "replay", "start", "--destination", "b", "--to", iso_us(connected_at),
        "--detach", "--format", "json",
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    job = json.loads(started.stdout)
    assert (job["first_seq"], job["last_seq"]) == (1, HISTORY)
    assert job["progress"]["total"] == HISTORY

    def replay_done() -> bool:
        shown = daemon.cli("replay", "status", job["id"], "--format", "json")
        assert shown.returncode == 0, shown.stderr
        return bool(json.loads(shown.stdout)["state"] == "done")

    wait_until(replay_done, 180, "the replay to finish")
    replay_ended = time.time()
    a_during_replay = sink_a.events_delivered

    # -- disconnect A; the live traffic goes on to B only ------------------------------
    time.sleep(1.0)
    daemon.config_path.write_text(config(b=sink_b.url))
    removed = daemon.cli("reload", "--format", "json")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    # a request sent before the removal may still be taken in by the sink just after it
    a_at_disconnect = settled(lambda: sink_a.events_delivered)
    time.sleep(1.0)
    live.stop()
    sent_live = list(live.sent)

    def b_caught_up() -> bool:
        status = admin.get("/admin/destinations/b").json()
        return bool(status["lag_events"] == 0 and status["pending_retries"] == 0)

    wait_until(b_caught_up, 120, "B to catch up with the live traffic")
    time.sleep(0.5)  # anything extra would arrive now

    # -- B: everything exactly once, per-user order in each stream ---------------------
    got_b = sink_b.arrivals()
    assert len(got_b) == len(set(got_b)), "B got duplicates"
    assert set(got_b) == set(history) | set(sent_live)
    for prefix, sent in (("hist", history), ("live", sent_live)):
        arrived = per_user(got_b, prefix)
        expected = per_user(sent, prefix)
        assert arrived == expected, f"B's {prefix} events out of per-user order"

    # -- A: received live traffic until it was disconnected, then nothing ----------------
    assert a_during_replay > HISTORY, "A got live events while the replay ran"
    assert sink_a.events_delivered == a_at_disconnect, "A got events after its removal"
    got_a = sink_a.delivered_ids()
    assert len(got_a) == len(set(got_a))
    with daemon.open_log() as log:
        cursor_a = log.get_cursor("destination:a")  # kept after the removal
        assert cursor_a is not None
        before_cursor = {str(r.event["messageId"]) for r in log.scan() if r.seq < cursor_a}
    assert before_cursor <= set(got_a), "A missed events before its cursor"

    # -- ingestion went on while the replay ran (its latency is printed, not judged) ---
    assert not live.failures, live.failures[:3]
    before = live.between(0, replay_started)
    during = live.between(replay_started, replay_ended)
    assert before and during, "no ingest request was answered before or while the replay ran"
    report = {
        "replay_seconds": round(replay_ended - replay_started, 2),
        "requests_before": len(before),
        "requests_during": len(during),
        "p50_before_ms": round(statistics.median(before) * 1000, 2),
        "p50_during_ms": round(statistics.median(during) * 1000, 2),
        "p99_before_ms": round(percentile(before, 0.99) * 1000, 2),
        "p99_during_ms": round(percentile(during, 0.99) * 1000, 2),
        "max_during_ms": round(max(during) * 1000, 2),
    }
    print("ingest latency around the replay:", json.dumps(report))
    admin.close()
