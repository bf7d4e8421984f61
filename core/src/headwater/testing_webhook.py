"""A webhook receiver and a black hole on loopback, for delivery tests and benchmarks.

    sink = WebhookSink().start()             # answers 200 to every batch, records it
    sink.behaviour = lambda req, events: (500, b"down", [])   # script faults any time
    sink.wait_for_events(100)
    sink.delivered_ids()                     # messageIds of batches answered 2xx, in order
    hole = BlackHole().start()               # accepts connections, never answers
    sink = SinkProcess(tmp_path / "sink.json")  # a sink in a process of its own
    sink.arrivals()                          # stops it; messageIds answered 2xx, in order

The sink is the daemon's own HTTP server (asyncio + httptools) on a private event loop in
a thread, so it keeps answering at full speed while a test blocks or a benchmark runs
the router on its own loop. ``python -m headwater.testing_webhook --port N`` runs one in
a process of its own and writes what it received as JSON when stopped (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from headwater_spec import HttpRequest, HttpResponse

from .daemon import HttpServer

Reply = tuple[int, bytes, list[tuple[str, str]]]
Behaviour = Callable[[HttpRequest, list[dict[str, Any]]], Reply | None]
"""Called for each request with the decoded events; return (status, body, headers), or
None for 200."""

_decode = msgspec.json.Decoder().decode


class Received(msgspec.Struct):
    """One request the sink answered: when (time.time()), with what, and its events."""

    at: float
    status: int
    events: list[dict[str, Any]]
    headers: dict[str, str]
    body: bytes


class WebhookSink:
    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", keep: bool = True) -> None:
        self.host = host
        self.port = port
        self.keep = keep
        """Keep every request (False: count events and note (messageId, time) only)."""
        self.behaviour: Behaviour | None = None
        self.requests: list[Received] = []
        self.arrivals: list[tuple[str, float]] = []
        """(messageId, time.time()) of every event in a batch answered 2xx."""
        self.events_delivered = 0
        self.first_at = 0.0
        self.last_at = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HttpServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> WebhookSink:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = HttpServer(self._handle, max_body=64 * 1024 * 1024)
            try:
                _, self.port = loop.run_until_complete(self._server.start(self.host, self.port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop(0.5))
            loop.close()

        self._thread = threading.Thread(target=run, name="webhook-sink", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        now = time.time()
        try:
            events = _decode(request.body)["batch"] if request.body else []
        except (msgspec.DecodeError, KeyError, TypeError):
            return HttpResponse.error(400, "bad_body", 'expected {"batch": [...]}')
        behaviour = self.behaviour
        reply = behaviour(request, events) if behaviour is not None else None
        status, body, headers = reply if reply is not None else (200, b'{"ok":true}', [])
        with self._lock:
            if self.keep:
                self.requests.append(
                    Received(now, status, events, dict(request.headers), request.body)
                )
            if 200 <= status < 300 and events:
                self.events_delivered += len(events)
                self.arrivals.extend((str(e.get("messageId")), now) for e in events)
                if not self.first_at:
                    self.first_at = now
                self.last_at = now
        return HttpResponse(status=status, body=body, headers=headers)

    # -- reading what arrived ----------------------------------------------------------

    def delivered(self) -> list[dict[str, Any]]:
        """Events of the batches answered 2xx, in arrival order (duplicates kept)."""
        with self._lock:
            return [e for r in self.requests if 200 <= r.status < 300 for e in r.events]

    def delivered_ids(self) -> list[str]:
        with self._lock:
            return [mid for mid, _ in self.arrivals]

    def wait_for_events(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` events were delivered (raise AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while self.events_delivered < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the sink got {self.events_delivered} of {count} events in {timeout} s"
                )
            time.sleep(0.02)


class BlackHole:
    """Accepts TCP connections and never answers, nor closes them (until ``stop``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(1024)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far (all still held open)."""
        return len(self._held)

    def start(self) -> BlackHole:
        self._sock.settimeout(0.1)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self._held.append(conn)

        self._thread = threading.Thread(target=run, name="black-hole", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._sock.close()

    def __enter__(self) -> BlackHole:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SinkProcess:
    """A webhook receiver in a process of its own (``python -m headwater.testing_webhook``):
    it does not compete with the test for this process's GIL, nor count in its memory
    (tracemalloc). Its arrivals, in order, are read when it stops."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater.testing_webhook", "--port", "0", "--out", str(out)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def arrivals(self) -> list[str]:
        """Stop the sink; the messageIds of the events it answered 2xx, in order."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        return [mid for mid, _at in json.loads(self.out.read_text())["arrivals"]]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    """Run a sink in this process until SIGTERM/SIGINT; then write ``--out`` as JSON:
    ``{"events": n, "first_at": t, "last_at": t, "arrivals": [[messageId, t], ...]}``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sink = WebhookSink(args.port, keep=False).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(sink.url, flush=True)
    done.wait()
    sink.stop()
    args.out.write_text(
        json.dumps(
            {
                "events": sink.events_delivered,
                "first_at": sink.first_at,
                "last_at": sink.last_at,
                "arrivals": sink.arrivals,
            }
        )
    )


if __name__ == "__main__":
    main()
