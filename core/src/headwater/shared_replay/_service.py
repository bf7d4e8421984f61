"""The replay service of a daemon whose log is JetStream: the LMDB replay's jobs, each run
by one daemon at a time.

Every daemon on the stream runs this service. Job records, cursors, parked retries and
dead letters are the replay package's own side-table entries, which on JetStream live in
the replicated KV state bucket: `headwater replay list/status` on any daemon reads the
same jobs and the progress their runner last committed (about every second). Each job is
*run* by one daemon, the holder of its lease (``_leases.py``). Every ``renew_every``
seconds a daemon:

1. renews the leases of the jobs it runs; a job whose lease was lost (this daemon stalled
   past the expiry and another took it) is stopped at once;
2. applies pause/cancel/resume requests other daemons left for the jobs it runs;
3. stops the jobs of a paused destination (`headwater destinations pause`, a flag in the
   state bucket) and starts them again when it is resumed;
4. turns `headwater dlq redrive` requests into replay jobs (``_redrive.py``);
5. gives back the leases of jobs it no longer runs (finished, paused, cancelled);
6. adopts every ``running`` job no daemon holds: the job created by a daemon that was then
   killed, or the job whose runner was killed. The new runner reloads the record and
   resumes from the job's committed cursor; what the dead runner had sent but not yet
   committed (at most about a second of the job plus its batches in flight) is sent
   again: at least once, as everywhere.

A job's events travel the same path as on LMDB (``ReplayRun``: the job's own reader,
lanes, connector instance, retry schedule and dead letters), reading the range from the
stream in chunks. Pause/resume/cancel given to a daemon that does not run the job are
written to the state bucket as a request (``replays`` table, key ``ctl\\0<id>``) for the
runner, and the call waits until the job's record shows the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..log import JetStreamLog
from ..log._kv_keys import escape
from ..replay import REPLAYS, JobStatus, ReplayJob, ReplayRequest, ReplayService, load_job
from ..replay._jobs import check_action, list_jobs
from ..replay._run import DRAIN_TIMEOUT
from ..shared_delivery._leases import open_lease_table
from ..shared_delivery._service import LEASE_TTL
from ._leases import ReplayLeases
from ._redrive import redrive_as_job, redrive_requested

if TYPE_CHECKING:
    from ..daemon import Daemon

_log = logging.getLogger("headwater.replay")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
CONTROL_PREFIX = b"ctl\x00"
"""Key prefix of control requests in the ``replays`` table (job records use ``job\\0``)."""
NUMBERING_KEY = "=00replay-ids"
"""Lease key held while a job id is chosen (not of the ``=00replay.<id>`` form)."""
_EXPECTED = {"pause": "paused", "resume": "running", "cancel": "cancelled"}


def control_key(job_id: str) -> bytes:
    return CONTROL_PREFIX + job_id.encode()


class SharedReplayService(ReplayService):
    name = "shared-replay"

    def __init__(self, daemon: Daemon, *, lease_ttl: float = LEASE_TTL) -> None:
        log = daemon.log
        if not isinstance(log, JetStreamLog):
            raise TypeError("shared replay needs the JetStream log ([log] backend)")
        super().__init__(
            log,
            daemon.config,
            daemon.registry,
            context_factory=daemon.make_context,
            config_source=lambda: daemon.config,
            metrics=daemon.metrics,
        )
        self.js_log: JetStreamLog = log
        self.lease_ttl = lease_ttl
        self.renew_every = lease_ttl / 3
        self._trust = lease_ttl * 2 / 3
        host = _UNSAFE.sub("_", socket.gethostname())[:40]
        self.daemon_id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._leases: ReplayLeases | None = None
        self._held: dict[str, int] = {}
        """Job id -> revision of the lease this daemon holds."""
        self._renewed: dict[str, float] = {}
        """Job id -> when its last successful renewal began (monotonic)."""
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        log = self.js_log

        self._leases = ReplayLeases(await open_lease_table(log, self.lease_ttl))
        await super().start()
        self._task = asyncio.create_task(self._claim_forever(), name="hw-replay-claim")

    async def stop(self) -> None:
        """Stop the jobs run here (their state saved), then hand their leases back so
        another daemon resumes them at once rather than after the lease expiry."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await super().stop()
        for job_id in list(self._held):
            await self._release(job_id)

    # -- who runs what -----------------------------------------------------------------

    @property
    def leases(self) -> ReplayLeases:
        if self._leases is None:
            raise RuntimeError("the replay leases are not open")
        return self._leases

    async def _launch(self, job: ReplayJob) -> None:
        """Run the job here if this daemon gets its lease; otherwise another daemon runs it."""
        if job.id not in self._held:
            started = time.monotonic()
            revision = await self.js_log.on_nats_loop(self.leases.acquire(job.id, self.daemon_id))
            if revision is None:
                return
            self._held[job.id] = revision
            self._renewed[job.id] = started
            job = load_job(self.log, job.id)  # what the last runner committed
            if job.state != "running":
                await self._release(job.id)
                return
            _log.info(
                "replay %s: run by this daemon (%s)",
                job.id,
                self.daemon_id,
                extra={"replay": job.id, "destination": job.destination},
            )
        await super()._launch(job)

    async def _release(self, job_id: str) -> None:
        revision = self._held.pop(job_id, None)
        self._renewed.pop(job_id, None)
        if revision is not None:
            await self.js_log.on_nats_loop(self.leases.release(job_id, revision))

    async def _claim_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.claim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS failover: keep what we can, try again
                _log.warning("replay leases: %r; retrying", exc)
            await asyncio.sleep(max(0.0, self.renew_every - (time.monotonic() - started)))

    async def claim(self) -> None:
        """One round of renew, control requests, give back, adopt (module docstring)."""
        await self._renew()
        await self._apply_requests()
        await self._follow_pauses()
        await self._redrive()
        async with self._lock:  # not while a job of ours is starting (create, resume)
            for job_id in list(self._held):
                if job_id not in self.runs and job_id not in self.waiting:
                    await self._release(job_id)
        for job in list_jobs(self.log):
            if job.state == "running" and job.id not in self._held:
                async with self._lock:
                    if job.id not in self.runs:
                        await self._launch(job)

    async def _follow_pauses(self) -> None:
        """Stop the jobs of a destination that was paused (or disabled, or removed) and
        start them again once it is back; the lease stays with this daemon meanwhile."""
        for job_id, run in list(self.runs.items()):
            reason = self._unavailable(run.job.destination)
            if reason is None:
                continue
            async with self._lock:
                if self.runs.get(job_id) is not run:
                    continue
                del self.runs[job_id]
                await run.stop()
                self.waiting[job_id] = reason
            _log.info("replay %s waits: %s", job_id, reason, extra={"replay": job_id})
        for job_id in list(self.waiting):
            if job_id not in self._held or job_id in self.runs:
                continue
            job = load_job(self.log, job_id)
            if job.state != "running":
                self.waiting.pop(job_id, None)
                continue
            if self._unavailable(job.destination) is None:
                async with self._lock:
                    if job_id not in self.runs:
                        await super()._launch(job)

    async def _redrive(self) -> None:
        """Turn `headwater dlq redrive` requests into replay jobs (see _redrive.py)."""
        for destination in self.config.destinations:
            if not redrive_requested(self.js_log, destination):
                continue
            key = f"=00redrive.{escape(destination.encode())}"
            revision = await self.js_log.on_nats_loop(self.leases.acquire_key(key, self.daemon_id))
            if revision is None:  # another daemon is converting it
                continue
            try:
                async with self._numbering():
                    job = await redrive_as_job(self.js_log, destination)
            finally:
                await self.js_log.on_nats_loop(self.leases.release_key(key, revision))
            if job is not None:
                _log.info(
                    "destination %s: redriving %d dead letters as replay %s",
                    destination,
                    job.pending,
                    job.id,
                    extra={"replay": job.id, "destination": destination},
                )

    async def _renew(self) -> None:
        for job_id, revision in list(self._held.items()):
            started = time.monotonic()
            try:
                new = await self.js_log.on_nats_loop(
                    self.leases.renew(job_id, self.daemon_id, revision)
                )
            except Exception as exc:
                if started - self._renewed.get(job_id, started) < self._trust:
                    _log.warning("replay %s: lease not renewed: %r", job_id, exc)
                    continue
                new = None
            if new is not None:
                self._held[job_id] = new
                self._renewed[job_id] = started
                continue
            _log.warning(
                "replay %s: lease lost; another daemon runs the job now",
                job_id,
                extra={"replay": job_id},
            )
            self._held.pop(job_id, None)
            self._renewed.pop(job_id, None)
            self.waiting.pop(job_id, None)
            async with self._lock:
                run = self.runs.pop(job_id, None)
            if run is not None:
                await run.stop(drain=0.0)

    async def _apply_requests(self) -> None:
        """Apply the requests for the jobs this daemon runs, each deleted once applied (or
        refused): one that fails on the way (the log unreachable) is tried next round."""
        requests = self.log.items(REPLAYS, CONTROL_PREFIX)
        for key, raw in requests:
            job_id = key[len(CONTROL_PREFIX) :].decode()
            if job_id not in self._held:
                continue
            action = raw.decode()
            try:
                await super().control(job_id, action)
            except (KeyError, ValueError) as exc:
                _log.warning("replay %s: %s request not applied: %s", job_id, action, exc)
            await self.js_log.awrite_batch([(REPLAYS, key, None)])

    # -- creating, with ids unique across daemons --------------------------------------

    @contextlib.asynccontextmanager
    async def _numbering(self) -> AsyncIterator[None]:
        """Hold the job-numbering lease while a new job id is chosen and its record
        written, so two daemons creating jobs at once do not both pick highest + 1. The
        lease expires with the bucket's ttl if its holder dies; after ``lease_ttl`` of
        waiting this daemon goes ahead anyway (a stuck lease must not block replays)."""
        deadline = time.monotonic() + self.lease_ttl
        revision = None
        while revision is None and time.monotonic() < deadline:
            revision = await self.js_log.on_nats_loop(
                self.leases.acquire_key(NUMBERING_KEY, self.daemon_id)
            )
            if revision is None:
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            if revision is not None:
                await self.js_log.on_nats_loop(self.leases.release_key(NUMBERING_KEY, revision))

    async def create(self, request: ReplayRequest) -> JobStatus:
        async with self._numbering():
            return await super().create(request)

    # -- control from any daemon -------------------------------------------------------

    async def control(self, job_id: str, action: str) -> JobStatus:
        """Pause, resume or cancel a job, whichever daemon runs it."""
        if job_id in self.runs or job_id in self._held:
            return await super().control(job_id, action)
        job = load_job(self.log, job_id)
        check_action(job, action)
        holder = await self.js_log.on_nats_loop(self.leases.holder(job_id))
        if holder is None or holder == self.daemon_id:
            return await super().control(job_id, action)
        await self.js_log.awrite_batch([(REPLAYS, control_key(job_id), action.encode())])
        expected = _EXPECTED[action]
        # a round to see the request, and a pause waits for the batches in flight
        deadline = time.monotonic() + self.lease_ttl + 2 * self.renew_every + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if load_job(self.log, job_id).state == expected:
                break
        return self.status(job_id)
