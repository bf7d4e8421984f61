"""Replay throughput and its cost to live ingestion, beside baselines of the same run.

What runs (one log of ``EVENTS`` Segment-like track events from ``USERS`` users, written
before the daemon starts; every commit fsynced):

- **raw log scan**: read the whole log in this process and decode every record
  (``LmdbLog.scan``): the floor cost of reading history. Also with each stored event
  decoded straight into the event model a destination is given (the router's decode),
  the least any replay does.
- **replay -> webhook sink**: `headwater serve` (a subprocess) replays the whole log to a
  webhook destination whose receiver runs in a process of its own
  (``python -m headwater.testing_webhook``) and answers 200 at once. Throughput is the
  job's events over its own started/finished times. Then the same to a JSON Lines file
  destination (fsync per batch).
- **live ingest without / with a replay**: a load client in another process sends 100-event
  ``POST /v1/batch`` requests on ``CONNECTIONS`` keep-alive connections for ``SECONDS``;
  once with the daemon otherwise idle (its destinations still deliver the live events),
  once while an unpaced replay of the whole log runs to the webhook sink.

Printed: events/s of each, the ratios replay / raw scan (target >= 0.5) and ingest with /
without a replay (target: loses under 20%, i.e. >= 0.8), and ingest latency p50/p99.
Client, daemon and sink share the 2 cores.

Run: ``uv run python benchmarks/bench_replay.py`` (about 40 s). Environment:
``BENCH_EVENTS`` (default 200000), ``BENCH_SECONDS`` (per ingest run, 5),
``BENCH_CONNECTIONS`` (8), ``BENCH_DIR`` (a real disk; default a temp dir).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

EVENTS = int(os.environ.get("BENCH_EVENTS", "200000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
USERS = 500
WRITE_KEY = "bench-write-key"
TOKEN = "bench-admin-token"


def event(n: int, prefix: str = "hist") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{n % USERS}",
        "messageId": f"{prefix}-{n}",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "properties": {"revenue": 12.5 + n % 100, "currency": "EUR", "items": [1, 2, 3]},
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
    }


# -- the load client (its own process) ----------------------------------------------------


async def client_main(host: str, port: int, seconds: float, connections: int) -> dict[str, Any]:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    bodies = []
    for variant in range(8):
        batch = [event(variant * 1000 + i, f"live{os.getpid()}-{variant}") for i in range(100)]
        body = msgspec.json.encode({"batch": batch})
        bodies.append(
            (
                f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    latencies: list[float] = []
    failures = [0]
    deadline = time.perf_counter() + seconds

    async def connection(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        n = index
        while (started := time.perf_counter()) < deadline:
            writer.write(bodies[n % len(bodies)])
            n += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line[15:]) for line in head.split(b"\r\n")
                 if line[:15].lower() == b"content-length:"),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - started)
            else:
                failures[0] += 1
        writer.close()

    await asyncio.gather(*(connection(i) for i in range(connections)))
    return {"latencies": latencies, "failures": failures[0], "seconds": seconds}


def run_client(url: str) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    out = subprocess.run(
        [sys.executable, __file__, "--client", host, port, str(SECONDS), str(CONNECTIONS)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# -- the measurements --------------------------------------------------------------------


def fill_log(data_dir: Path) -> None:
    from headwater.log import LmdbLog

    with LmdbLog(data_dir) as log:
        for start in range(0, EVENTS, 5000):
            log.append_sync("web", [event(n) for n in range(start, min(EVENTS, start + 5000))])


def raw_scan(data_dir: Path) -> tuple[float, float]:
    from headwater.log import LmdbLog
    from headwater.router._decode import decode_header, typed_event

    with LmdbLog(data_dir, readonly=True) as log:
        started = time.perf_counter()
        count = sum(1 for _ in log.scan())
        scan = count / (time.perf_counter() - started)
        started = time.perf_counter()
        for _seq, raw in log.scan_raw():
            typed_event(decode_header(raw).event)
        model = count / (time.perf_counter() - started)
    return scan, model


def config_text(root: Path, sink_url: str) -> str:
    return f"""
[workspace]
name = "bench"
data_dir = "{root / "data"}"

[server]
listen = "127.0.0.1:0"
admin_token = "{TOKEN}"

[sources.web]
connector = "tracking-api"
write_keys = ["{WRITE_KEY}"]

[destinations.sink]
connector = "webhook"
url = "{sink_url}/in"

[destinations.archive]
connector = "file"
path = "{root / "archive.jsonl"}"
"""


class Daemon:
    def __init__(self, root: Path, sink_url: str) -> None:
        self.root = root
        (root / "headwater.toml").write_text(config_text(root, sink_url))
        self.stderr = (root / "daemon.err").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve", "--config", str(root / "headwater.toml"),
             "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        runfile = root / "data" / "serve.json"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError((root / "daemon.err").read_text())
            if runfile.exists():
                self.url = json.loads(runfile.read_text())["url"]
                try:
                    if httpx.get(f"{self.url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.05)
        self.admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def replay(self, destination: str) -> dict[str, Any]:
        response = self.admin.post("/admin/replays", json={"destination": destination})
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.admin.get(f"/admin/replays/{job_id}").json()
        return job

    def wait_done(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (job := self.job(job_id))["state"] == "running":
            if time.monotonic() > deadline:
                raise RuntimeError(f"replay {job_id} did not finish: {job['progress']}")
            time.sleep(0.05)
        return job

    def lag(self, destination: str) -> int:
        status = self.admin.get(f"/admin/destinations/{destination}").json()
        return int(status["lag_events"]) + int(status["pending_retries"])

    def stop(self) -> None:
        self.admin.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.stderr.close()


def job_rate(job: dict[str, Any]) -> float:
    from datetime import datetime

    started = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    seconds = (finished - started).total_seconds()
    return float(job["progress"]["total"]) / seconds if seconds > 0 else 0.0


def ingest_figures(result: dict[str, Any]) -> tuple[float, float, float]:
    latencies = result["latencies"]
    rate = len(latencies) * 100 / result["seconds"]
    ordered = sorted(latencies)
    p99 = ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0
    return rate, statistics.median(latencies) * 1000 if latencies else 0.0, p99 * 1000


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=os.environ.get("BENCH_DIR")))
    sink = None
    daemon = None
    try:
        fill_log(root / "data")
        scan, scan_model = raw_scan(root / "data")
        sink = subprocess.Popen(
            [sys.executable, "-m", "headwater.testing_webhook", "--port", "0",
             "--out", str(root / "sink.json")],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert sink.stdout is not None
        sink_url = sink.stdout.readline().strip()
        daemon = Daemon(root, sink_url)

        webhook = job_rate(daemon.wait_done(daemon.replay("sink")["id"]))
        to_file = job_rate(daemon.wait_done(daemon.replay("archive")["id"]))

        idle = ingest_figures(run_client(daemon.url))
        while daemon.lag("sink") or daemon.lag("archive"):
            time.sleep(0.1)
        job = daemon.replay("sink")
        busy = ingest_figures(run_client(daemon.url))
        during = daemon.job(job["id"])
        overlap = during["state"] == "running"
        done = daemon.wait_done(job["id"])
        beside_ingest = job_rate(done)
    except Exception:
        err = root / "daemon.err"
        if err.exists():  # what the daemon said before things went wrong
            print(err.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        if daemon is not None:
            daemon.stop()
        if sink is not None:
            sink.terminate()
            sink.wait(30)
        shutil.rmtree(root, ignore_errors=True)

    print(f"replay of {EVENTS:,} events ({USERS} users), 2-core figures, same run:")
    print(f"  raw log scan (decode every record)            {scan:>10,.0f} events/s   1.00")
    print(f"  raw log scan + event model                    {scan_model:>10,.0f} events/s   "
          f"{scan_model / scan:.2f}")  # fmt: skip
    print(f"  replay -> webhook sink (own process)          {webhook:>10,.0f} events/s   "
          f"{webhook / scan:.2f}   (target >= 0.50)")  # fmt: skip
    print(f"  replay -> file (JSON Lines, fsync per batch)  {to_file:>10,.0f} events/s   "
          f"{to_file / scan:.2f}")  # fmt: skip
    print(f"  replay -> webhook sink, beside live ingest    {beside_ingest:>10,.0f} events/s")
    print(f"live ingest, {CONNECTIONS} connections x 100-event batches, {SECONDS:g} s each:")
    print(f"  without a replay   {idle[0]:>10,.0f} events/s   p50 {idle[1]:.1f} ms   "
          f"p99 {idle[2]:.1f} ms")  # fmt: skip
    print(f"  with a replay      {busy[0]:>10,.0f} events/s   p50 {busy[1]:.1f} ms   "
          f"p99 {busy[2]:.1f} ms   ratio {busy[0] / idle[0]:.2f} (target >= 0.80)"
          + ("" if overlap else "   [the replay ended before the run did]"))  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        host, port, seconds, connections = sys.argv[2:6]
        result = asyncio.run(client_main(host, int(port), float(seconds), int(connections)))
        print(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
