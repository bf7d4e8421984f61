"""Replay jobs as a daemon service: start them, run them beside live traffic, control them.

At start every job whose state is ``running`` resumes from its committed cursor (a job
interrupted by a crash re-sends at most what was in flight, like live delivery). A job
runs while its destination is configured, enabled and not paused; otherwise it waits,
with the reason in its status, and goes on by itself when the destination is back
(``destination_changed`` is called by reloads and by pause/resume). A changed destination
restarts its jobs with the new connector config.

Progress rate is measured here, every second, over the last few seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from headwater_spec import ConnectorContext, Destination

from ..config import Config, ConnectorInstance
from ..log import AnyLog, now_us
from ..plugins import ConnectorRegistry
from ..router import (
    RETRIES,
    DeliverySettings,
    EventFilter,
    Router,
    delivery_settings,
    event_filter,
)
from ..router._records import is_paused
from ._jobs import (
    JobStatus,
    ReplayRequest,
    build_job,
    check_action,
    job_cursor,
    job_status,
    list_jobs,
    load_job,
    save_job,
)
from ._pressure import LoopPressure
from ._records import ReplayJob
from ._run import ReplayRun, parked_keys

if TYPE_CHECKING:
    from ..daemon import Metrics

_log = logging.getLogger("headwater.replay")
SAMPLE_EVERY = 1.0
SHUTDOWN_DRAIN = 2.0
"""Seconds a stopping daemon lets the replays' batches in flight finish (the HTTP drain has
already had its grace period; what is cut short is sent again at the next start)."""
RATE_WINDOW = 5


class ReplayService:
    name = "replay"

    def __init__(
        self,
        log: AnyLog,
        config: Config,
        registry: ConnectorRegistry,
        *,
        context_factory: Callable[[ConnectorInstance], ConnectorContext],
        router: Router | None = None,
        config_source: Callable[[], Config] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.log = log
        self._config = config
        self._config_source = config_source
        self.registry = registry
        self.context_factory = context_factory
        self.router = router
        self.runs: dict[str, ReplayRun] = {}
        self.waiting: dict[str, str] = {}
        self._samples: dict[str, collections.deque[tuple[float, int]]] = {}
        self._sampler: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.pressure = LoopPressure()
        self._gauges = None
        if metrics is not None:
            labels = ("replay", "destination")
            self._gauges = (
                metrics.gauge(
                    "headwater_replay_events_done", "Events of the range finished", labels
                ),
                metrics.gauge("headwater_replay_events_total", "Events in the job's range", labels),
                metrics.gauge("headwater_replay_rate", "Events per second lately", labels),
            )

    @property
    def config(self) -> Config:
        """The daemon's current config (a reload replaces it)."""
        return self._config_source() if self._config_source is not None else self._config

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        async with self._lock:
            for job in list_jobs(self.log):
                if job.state == "running":
                    await self._launch(job)
        self._sampler = asyncio.create_task(self._sample(), name="hw-replay-progress")

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        async with self._lock:
            runs = list(self.runs.values())
            self.runs.clear()
            await asyncio.gather(*(run.stop(drain=SHUTDOWN_DRAIN) for run in runs))

    # -- control -----------------------------------------------------------------------

    async def create(self, request: ReplayRequest) -> JobStatus:
        async with self._lock:
            job = build_job(self.log, self.config, request)
            save_job(self.log, job)
            _log.info(
                "replay %s created: %s seqs %d..%d",
                job.id,
                job.destination,
                job.first_seq,
                job.last_seq,
                extra={"replay": job.id, "destination": job.destination},
            )
            await self._launch(job)
            return self.status(job.id)

    async def control(self, job_id: str, action: str) -> JobStatus:
        """Pause, resume or cancel a job."""
        async with self._lock:
            job = self._job(job_id)
            check_action(job, action)
            run = self.runs.pop(job_id, None)
            if action == "pause":
                if run is not None:  # the batches in flight land before "paused" is written
                    await run.stop()
                if job.state == "running":  # not when it finished meanwhile
                    job.state = "paused"
                save_job(self.log, job)
                self.waiting.pop(job_id, None)
            elif action == "resume":
                job.state = "running"
                save_job(self.log, job)
                await self._launch(job)
            else:
                job.state = "cancelled"
                job.finished_at = now_us()
                if run is not None:
                    await run.stop()
                job.pending = 0
                ops: list[tuple[bytes, bytes, bytes | None]] = [
                    (RETRIES, key, None) for key in parked_keys(self.log, job_id)
                ]
                self.log.write_batch(ops)
                save_job(self.log, job)
                self.waiting.pop(job_id, None)
            _log.info("replay %s: %s", job_id, action, extra={"replay": job_id})
            return self.status(job_id)

    async def destination_changed(self, destination: str) -> None:
        """The destination was added, changed, removed, paused or resumed: restart its
        running jobs with what is configured now (or let them wait)."""
        async with self._lock:
            for job_id, run in list(self.runs.items()):
                if run.job.destination == destination:
                    del self.runs[job_id]
                    await run.stop()
            for job in list_jobs(self.log):
                if job.destination == destination and job.state == "running":
                    await self._launch(job)

    # -- reading -----------------------------------------------------------------------

    def _job(self, job_id: str) -> ReplayJob:
        run = self.runs.get(job_id)
        return run.job if run is not None else load_job(self.log, job_id)

    def status(self, job_id: str) -> JobStatus:
        run = self.runs.get(job_id)
        if run is None:
            job = load_job(self.log, job_id)
            return job_status(job, job_cursor(self.log, job), waiting=self.waiting.get(job_id))
        waiting = run.failure
        held = run.backing_off()
        if waiting is None and held:
            waiting = f"the destination asked to wait; backing off for {held:.1f} s"
        return job_status(
            run.job, run.cursor, pending=run.pending, rate=self._rate(job_id), waiting=waiting
        )

    def list(self) -> list[JobStatus]:
        return [self.status(job.id) for job in list_jobs(self.log)]

    def _rate(self, job_id: str) -> float:
        samples = self._samples.get(job_id)
        if not samples or len(samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = samples[0], samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    async def _sample(self) -> None:
        while True:
            now = time.monotonic()
            for job_id, run in list(self.runs.items()):
                done = max(0, run.cursor - run.job.first_seq - run.pending)
                window = self._samples.setdefault(job_id, collections.deque(maxlen=RATE_WINDOW))
                window.append((now, done))
                if self._gauges is not None:
                    key = (job_id, run.job.destination)
                    done_gauge, total_gauge, rate_gauge = self._gauges
                    done_gauge.labels(*key).set(done)
                    total_gauge.labels(*key).set(run.job.total)
                    rate_gauge.labels(*key).set(self._rate(job_id))
            for job_id in list(self._samples):
                if job_id not in self.runs:
                    del self._samples[job_id]
            await asyncio.sleep(SAMPLE_EVERY)

    # -- running -----------------------------------------------------------------------

    def _unavailable(self, destination: str) -> str | None:
        instance = self.config.destinations.get(destination)
        if instance is None:
            return f"destination {destination!r} is no longer configured"
        if not instance.enabled:
            return f"destination {destination!r} is disabled (enabled = false)"
        if is_paused(self.log, destination):
            return f"destination {destination!r} is paused (`headwater destinations resume`)"
        return None

    async def _launch(self, job: ReplayJob) -> None:
        reason = self._unavailable(job.destination)
        if reason is not None:
            self.waiting[job.id] = reason
            _log.info("replay %s waits: %s", job.id, reason, extra={"replay": job.id})
            return
        instance = self.config.destinations[job.destination]
        try:
            connector, settings, dest_filter = self._build(instance)
        except Exception as exc:
            self.waiting[job.id] = f"destination {job.destination!r} cannot start: {exc}"
            _log.error("replay %s cannot start: %s", job.id, exc, extra={"replay": job.id})
            return
        live = self.router.loops.get(job.destination) if self.router is not None else None
        run = ReplayRun(
            self.log,
            job,
            connector,
            destination_filter=dest_filter,
            settings=settings,
            limiter=live.limiter if live is not None else None,
            on_done=self._done,
            pressure=self.pressure,
        )
        self.waiting.pop(job.id, None)
        await run.start()
        self.runs[job.id] = run

    def _build(
        self, instance: ConnectorInstance
    ) -> tuple[Destination, DeliverySettings, EventFilter]:
        loaded = self.registry.get(instance.connector)
        if not issubclass(loaded.cls, Destination):
            raise TypeError(f"connector {instance.connector!r} is not a destination")
        connector = loaded.cls(instance.options, self.context_factory(instance))
        assert isinstance(connector, Destination)
        settings = delivery_settings(instance, loaded.spec, base=self._base_settings())
        return connector, settings, event_filter(instance, loaded.spec)

    def _base_settings(self) -> DeliverySettings | None:
        return self.router.base_settings if self.router is not None else None

    def _done(self, run: ReplayRun) -> None:
        if self.runs.get(run.job.id) is run:
            del self.runs[run.job.id]
