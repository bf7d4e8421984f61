"""Ingest on the JetStream backend, one and two daemons, beside LMDB, in the same run.

What runs (each HTTP run: ``CONNECTIONS`` keep-alive connections sending 100-event
``POST /v1/batch`` bodies back to back from a client in its own process, spread evenly over
the daemons; a 200 means stored: fsynced in LMDB, acknowledged by the stream in JetStream):

- **append, no HTTP**: ``CONNECTIONS`` asyncio tasks awaiting ``log.append`` of 100
  decoded events, on LMDB and on JetStream: what each backend can take from one process;
- **LMDB, 1 daemon**: `headwater serve` on the embedded log (the baseline);
- **JetStream, 1 daemon** and **JetStream, 2 daemons**: the same daemons on one stream of a
  single-node nats-server this benchmark starts (its own port and store directory).

Printed: events/s of each run, the ratios JetStream / LMDB and 2 daemons / 1 daemon, and
CPU seconds per 100k events spent in the daemons and in nats-server: the figures
docs/scale.md uses to argue what more machines would give. Everything shares the 2 cores
of this machine, so the two-daemon figure measures contention here, not scaling.

Run: ``uv run python benchmarks/bench_jetstream.py`` (about 45 s).
Environment: ``BENCH_SECONDS`` (per HTTP run, default 6), ``BENCH_CONNECTIONS`` (32).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psutil

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
APPEND_SECONDS = 3.0
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
EVENTS = 100
WRITE_KEY = "bench-write-key"


def make_batch(variant: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"user-{variant}-{i % 17}",
            "messageId": str(uuid.uuid4()),
            "timestamp": "2024-05-01T12:00:00.000Z",
            "properties": {"revenue": 12.5 + i, "currency": "USD", "items": [1, 2, 3]},
            "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        }
        for i in range(EVENTS)
    ]


# -- the load client (its own process) -----------------------------------------------------


async def client_main(urls: list[str], seconds: float, connections: int) -> dict[str, Any]:
    """Each request body carries fresh messageIds: JetStream would drop repeats."""
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    done = [0, 0]
    warmup_end = time.perf_counter() + 1.0
    deadline = warmup_end + seconds

    async def connection(index: int) -> None:
        host, port = urls[index % len(urls)].removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        n = 0
        while True:
            started = time.perf_counter()
            if started >= deadline:
                break
            body = msgspec.json.encode({"batch": make_batch(index * 1000 + n % 7)})
            n += 1
            writer.write(
                f"POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if started < warmup_end:
                continue
            done[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
        writer.close()

    await asyncio.gather(*(connection(i) for i in range(connections)))
    return {"events_per_s": done[0] * EVENTS / seconds, "failures": done[1]}


def run_client(urls: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(urls), str(SECONDS), str(CONNECTIONS)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# -- measurements ----------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measure_append(log: Any) -> float:
    """Events/s of ``append`` from one process with no HTTP in front."""
    batches = [make_batch(v) for v in range(CONNECTIONS)]

    async def run() -> int:
        done = [0]
        deadline = time.perf_counter() + APPEND_SECONDS

        async def worker(n: int) -> None:
            while time.perf_counter() < deadline:
                fresh = [{**e, "messageId": str(uuid.uuid4())} for e in batches[n]]
                await log.append("bench", fresh)
                done[0] += EVENTS

        await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
        return done[0]

    return asyncio.run(run()) / APPEND_SECONDS


def measure_daemons(config: str, root: Path, count: int, nats_pid: int | None) -> dict[str, Any]:
    from headwater.testing import DaemonProcess

    daemons = [DaemonProcess(config, root / f"daemon-{i}").start() for i in range(count)]
    try:
        pids = [d.pid for d in daemons]
        daemon_cpu, nats_cpu = cpu_seconds(pids), cpu_seconds([nats_pid] if nats_pid else [])
        result = run_client([d.url for d in daemons])
        daemon_cpu = cpu_seconds(pids) - daemon_cpu
        nats_cpu = cpu_seconds([nats_pid] if nats_pid else []) - nats_cpu
    finally:
        for daemon in daemons:
            daemon.stop()
    events = result["events_per_s"] * (SECONDS + 1.0)  # CPU was counted over warm-up too
    result["daemon_cpu_per_100k"] = daemon_cpu / events * 1e5 if events else float("nan")
    result["nats_cpu_per_100k"] = nats_cpu / events * 1e5 if events else float("nan")
    return result


def main() -> int:
    from headwater.log import JetStreamLog, LmdbLog
    from headwater.log._nats_connect import NatsOptions
    from headwater.testing_nats import NatsServer

    root = Path(tempfile.mkdtemp(prefix="hw-bench-jetstream-"))
    source = f'[sources.web]\nconnector = "tracking-api"\nwrite_keys = ["{WRITE_KEY}"]\n'
    server = NatsServer(root / "nats" / "store").start()
    try:
        lmdb = LmdbLog(root / "append-lmdb")
        lmdb_append = measure_append(lmdb)
        lmdb.close()
        jetstream = JetStreamLog(NatsOptions(servers=(server.url,)), "bench-append")
        js_append = measure_append(jetstream)
        jetstream.drop()
        jetstream.close()

        pid = server.process.pid if server.process else None
        lmdb_http = measure_daemons(source, root / "lmdb", 1, None)
        runs = {}
        for count in (1, 2):
            stream = f"bench-{count}"
            log_table = f'backend = "jetstream"\nservers = ["{server.url}"]\nstream = "{stream}"\n'
            config = f"{source}\n[log]\n{log_table}"
            runs[count] = measure_daemons(config, root / stream, count, pid)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"ingest, JetStream beside LMDB: {CONNECTIONS} connections x {EVENTS}-event /v1/batch, "
        f"{SECONDS:g} s per HTTP run; single-node nats-server (R1) on this machine"
    )
    print(f"  append, no HTTP, LMDB (fsync per group)      {lmdb_append:>10,.0f} events/s")
    print(f"  append, no HTTP, JetStream (acked)           {js_append:>10,.0f} events/s")
    rows = [("LMDB, 1 daemon", lmdb_http), ("JetStream, 1 daemon", runs[1])]
    rows.append(("JetStream, 2 daemons", runs[2]))
    for name, fig in rows:
        nats = fig["nats_cpu_per_100k"]
        print(
            f"  {name:<44} {fig['events_per_s']:>10,.0f} events/s   CPU per 100k events: "
            f"daemons {fig['daemon_cpu_per_100k']:.2f} s"
            + (f", nats-server {nats:.2f} s" if nats == nats else "")
            + (f"   non-200: {fig['failures']}" if fig["failures"] else "")
        )
    print("  ratios")
    print(f"    append JetStream / LMDB                    {js_append / lmdb_append:>10.2f}")
    js1, js2 = runs[1]["events_per_s"], runs[2]["events_per_s"]
    print(
        f"    HTTP JetStream 1 daemon / LMDB 1 daemon    {js1 / lmdb_http['events_per_s']:>10.2f}"
    )
    print(f"    HTTP JetStream 2 daemons / 1 daemon        {js2 / js1:>10.2f}")
    print(
        f"    HTTP JetStream 2 daemons / LMDB 1 daemon   {js2 / lmdb_http['events_per_s']:>10.2f}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        urls = json.loads(sys.argv[2])
        result = asyncio.run(client_main(urls, float(sys.argv[3]), int(sys.argv[4])))
        print(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
