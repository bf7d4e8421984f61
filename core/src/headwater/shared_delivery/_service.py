"""Shared delivery: the daemon service that delivers a JetStream log with other daemons.

Every daemon on the same stream runs it. Each destination's events are split over the
stream's partition subjects; each partition has a durable consumer (the cursor, kept by
the cluster) and a lease (who delivers it now). Every ``renew_every`` seconds a daemon:

1. writes its heartbeats (one per destination it delivers) and counts, per destination,
   the live daemons delivering it;
2. renews its leases (a lease it cannot renew is lost: its worker stops at once);
3. gives up partitions above its fair share, ceil(partitions / those daemons), after their
   current batch, so a daemon that joins gets work within a few seconds;
4. acquires free partitions up to its share and starts a worker on each.

A paused destination (its flag in the state bucket, `headwater destinations pause`) has
every worker end after its current batch and no partition acquired, on every daemon
within ``renew_every``; its consumers keep their ack floors, so it resumes where it was.

A daemon killed with kill -9 simply stops renewing; its leases expire after ``lease_ttl``
and the others take its partitions over, restarting each at the consumer's ack floor.
See docs/scale.md for the guarantees and their limits.
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
from typing import TYPE_CHECKING, Any

from headwater_spec import Destination, HttpRequest, HttpResponse

from ..config import ConnectorInstance
from ..log import JetStreamLog, seq_key
from ..router._context import InstanceContext
from ..router._delivery import DeliverySettings, StartError
from ..router._filter import EventFilter
from ..router._ratelimit import RateLimiter
from ..router._records import DESTINATIONS, is_paused
from ..router._settings import SettingsError, delivery_settings, event_filter
from ._consumer import consumer_lag, consumer_name
from ._leases import LeaseTable, fair_share, open_lease_table
from ._worker import PartitionWorker

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from ..daemon import Daemon

_log = logging.getLogger("headwater.shared_delivery")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
LEASE_TTL = 6.0
START_KEY = b"jetstream-start\x00"


class _Lease:
    __slots__ = ("revision", "worker")

    def __init__(self, revision: int, worker: PartitionWorker) -> None:
        self.revision = revision
        self.worker = worker


class DestinationRuntime:
    """One destination as this daemon delivers it: connector, settings, counters, leases."""

    def __init__(
        self,
        log: JetStreamLog,
        instance: ConnectorInstance,
        connector: Destination,
        settings: DeliverySettings,
        event_filter: EventFilter,
        counters: Any,
    ) -> None:
        self.log = log
        self.id = instance.id
        self.instance = instance
        self.connector = connector
        self.settings = settings
        self.filter = event_filter
        self.start_seq = 1
        self.leases: dict[int, _Lease] = {}
        self.acked_seq: dict[int, int] = {}
        """Partition -> the last sequence this daemon acknowledged there (for status)."""
        self.totals: dict[str, int] = {}
        self.paused = False
        """The destination's pause flag as last read (`headwater destinations pause`)."""
        self._counters = counters
        self.limiter = RateLimiter(settings.rate_limit)
        """This daemon's share of `rate_limit`, and the hold a 429 Retry-After puts on
        every partition this daemon delivers."""

    def share_rate(self, daemons: int) -> None:
        """Split `rate_limit` evenly over the live daemons (each holds a fair share of the
        partitions, so each sends about as much)."""
        rate = self.settings.rate_limit
        if rate is None:
            return
        mine = rate / max(daemons, 1)
        self.limiter.rate = mine
        self.limiter.burst = max(1.0, mine)

    def count(self, what: str, amount: int = 1) -> None:
        self.totals[what] = self.totals.get(what, 0) + amount
        self._counters.labels(self.id, what).inc(amount)


class SharedDelivery:
    """The delivery service of a daemon whose log is JetStream."""

    name = "shared-delivery"

    def __init__(self, daemon: Daemon, *, lease_ttl: float = LEASE_TTL) -> None:
        log = daemon.log
        if not isinstance(log, JetStreamLog):
            raise TypeError("shared delivery needs the JetStream log ([log] backend)")
        self.daemon = daemon
        self.log: JetStreamLog = log
        self.lease_ttl = lease_ttl
        self.renew_every = lease_ttl / 3
        self._trust = lease_ttl * 2 / 3
        """A lease is trusted this long after its last renewal began (one renewal may fail)."""
        host = _UNSAFE.sub("_", socket.gethostname())[:40]
        self.daemon_id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.destinations: dict[str, DestinationRuntime] = {}
        self.errors: dict[str, str] = {}
        self.daemons: list[str] = []
        self._leases: LeaseTable | None = None
        self._task: asyncio.Task[None] | None = None
        self._counters = daemon.metrics.counter(
            "headwater_shared_delivery_events_total",
            "Events handled by this daemon's shared delivery, by outcome",
            ("destination", "outcome"),
        )
        daemon.routes.add("GET", "/admin/shared-delivery", self._status_route)

    async def _status_route(self, request: HttpRequest) -> HttpResponse:
        """GET /admin/shared-delivery: this daemon's partitions, every destination's lag."""
        return HttpResponse.json(await self.status())

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        log = self.log

        self._leases = await open_lease_table(log, self.lease_ttl)
        for instance in self.daemon.config.destinations.values():
            if not instance.enabled:
                continue
            try:
                runtime = self._build(instance)
                runtime.start_seq = await self._start_seq(runtime)
            except (SettingsError, StartError, KeyError, ValueError, TypeError) as exc:
                error = self.daemon.registry.redact(instance.connector, instance.options, str(exc))
                self.errors[instance.id] = error
                _log.error("destination %s not started: %s", instance.id, error)
                continue
            self.destinations[instance.id] = runtime
        self._task = asyncio.create_task(self._balance_forever(), name="hw-shared-balance")
        _log.info(
            "shared delivery started",
            extra={
                "fields": {
                    "daemon": self.daemon_id,
                    "destinations": sorted(self.destinations),
                    "partitions": log.partitions,
                }
            },
        )

    def _build(self, instance: ConnectorInstance) -> DestinationRuntime:
        loaded = self.daemon.registry.get(instance.connector)
        spec = loaded.spec
        if spec.direction != "out" or not issubclass(loaded.cls, Destination):
            raise SettingsError(
                f"`destinations.{instance.id}.connector`: {instance.connector!r} is a source "
                "connector; configure it under [sources]"
            )
        region = self.daemon.effective_region(instance)
        context = InstanceContext(
            instance.id, region, self.daemon.config.data_dir, instance.endpoint
        )
        connector = loaded.cls(instance.options, context)
        assert isinstance(connector, Destination)
        return DestinationRuntime(
            self.log,
            instance,
            connector,
            delivery_settings(instance, spec),
            event_filter(instance, spec),
            self._counters,
        )

    async def _start_seq(self, runtime: DestinationRuntime) -> int:
        """Where a new destination starts (`start`), fixed once for every daemon: the first
        daemon to start it stores the sequence, the others read it."""
        key = START_KEY + runtime.id.encode()
        stored = self.log.get_value(DESTINATIONS, key)
        if stored is not None:
            return int.from_bytes(stored, "big")
        start = runtime.settings.start.strip()
        if start == "beginning":
            seq = max(1, self.log.first_seq())
        elif start == "now":
            seq = self.log.last_seq() + 1
        else:
            from datetime import datetime

            try:
                moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                raise StartError(
                    f'destination {runtime.id}: `start` = {start!r}; use "now", "beginning" '
                    "or an ISO 8601 time such as 2024-05-01T00:00:00Z"
                ) from None
            seq = self.log.seq_at_time(int(moment.timestamp() * 1_000_000))
        await self.log.awrite_batch([(DESTINATIONS, key, seq_key(seq))])
        return seq

    async def stop(self) -> None:
        """Finish the batches in flight (briefly), acknowledge them, hand the partitions
        back so the other daemons take over at once, close the connectors."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        workers = [
            lease.worker for rt in self.destinations.values() for lease in rt.leases.values()
        ]
        for worker in workers:
            worker.stopping = True
        tasks = [w.task for w in workers if w.task is not None]
        if tasks:
            _done, slow = await asyncio.wait(tasks, timeout=5.0)
            for task in slow:
                task.cancel()
            await asyncio.gather(*slow, return_exceptions=True)
        for runtime in self.destinations.values():
            for partition, lease in list(runtime.leases.items()):
                await self._release(runtime, partition, lease)
            with contextlib.suppress(Exception):
                await runtime.connector.close()
        leases = self._leases
        if leases is not None:
            with contextlib.suppress(Exception):
                await self.log.on_nats_loop(leases.leave(self.daemon_id, list(self.destinations)))

    # -- balancing -----------------------------------------------------------------------

    async def _balance_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.balance()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS failover: keep the leases we can, try again
                _log.warning("shared delivery: balancing failed: %r; retrying", exc)
            await asyncio.sleep(max(0.0, self.renew_every - (time.monotonic() - started)))

    async def balance(self) -> None:
        leases = self._leases
        assert leases is not None
        await self.log.on_nats_loop(leases.heartbeat(self.daemon_id, list(self.destinations)))
        self.daemons = await self.log.on_nats_loop(leases.live_daemons())
        for runtime in self.destinations.values():
            members = await self.log.on_nats_loop(leases.members(runtime.id))
            count = len(set(members) | {self.daemon_id})
            share = fair_share(self.log.partitions, count)
            runtime.share_rate(count)
            await self._renew(runtime)
            if self._paused(runtime):  # `headwater destinations pause`
                await self._shed(runtime, 0)  # its workers end after their batch
                continue
            await self._shed(runtime, share)
            await self._acquire(runtime, share)

    def _paused(self, runtime: DestinationRuntime) -> bool:
        """The destination's pause flag; the last one seen while NATS does not answer (a
        failover must not stop the round before the other destinations' renewals)."""
        try:
            runtime.paused = is_paused(self.log, runtime.id)
        except Exception as exc:
            _log.warning("destination %s: pause flag not read: %r", runtime.id, exc)
        return runtime.paused

    async def _renew(self, runtime: DestinationRuntime) -> None:
        leases = self._leases
        assert leases is not None
        for partition, lease in list(runtime.leases.items()):
            worker = lease.worker
            if worker.task is not None and worker.task.done():
                await self._release(runtime, partition, lease)
                continue
            started = time.monotonic()
            revision = await self.log.on_nats_loop(
                leases.renew(runtime.id, partition, self.daemon_id, lease.revision)
            )
            if revision is None:
                _log.warning(
                    "destination %s partition %d: lease lost; stopping its delivery",
                    runtime.id,
                    partition,
                )
                worker.stopping = True
                del runtime.leases[partition]
                continue
            lease.revision = revision
            worker.lease_deadline = started + self._trust

    async def _shed(self, runtime: DestinationRuntime, share: int) -> None:
        extra = len(runtime.leases) - share
        for partition in sorted(runtime.leases, reverse=True)[: max(extra, 0)]:
            runtime.leases[partition].worker.stopping = True  # released once its task ends

    async def _acquire(self, runtime: DestinationRuntime, share: int) -> None:
        leases = self._leases
        assert leases is not None
        active = sum(1 for lease in runtime.leases.values() if not lease.worker.stopping)
        if active >= share:
            return
        taken = await self.log.on_nats_loop(leases.owners(runtime.id))
        for partition in range(self.log.partitions):
            if active >= share:
                return
            if partition in taken or partition in runtime.leases:
                continue
            started = time.monotonic()
            revision = await self.log.on_nats_loop(
                leases.acquire(runtime.id, partition, self.daemon_id)
            )
            if revision is None:
                continue
            worker = PartitionWorker(runtime, partition, started + self._trust)
            runtime.leases[partition] = _Lease(revision, worker)
            worker.start()
            active += 1

    async def _release(self, runtime: DestinationRuntime, partition: int, lease: _Lease) -> None:
        leases = self._leases
        runtime.leases.pop(partition, None)
        if leases is None:
            return
        with contextlib.suppress(Exception):
            await self.log.on_nats_loop(leases.release(runtime.id, partition, lease.revision))

    # -- reporting -----------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """What this daemon holds and, per destination, the events not yet delivered."""
        log = self.log
        out: dict[str, Any] = {"daemon": self.daemon_id, "daemons": self.daemons}
        destinations: dict[str, Any] = {}
        for runtime in self.destinations.values():
            names = [consumer_name(runtime.id, p) for p in range(log.partitions)]

            async def lag(nc: Client, js: JetStreamContext, names: list[str] = names) -> int:
                return sum([await consumer_lag(js, log.stream, n) for n in names])

            destinations[runtime.id] = {
                "partitions": sorted(runtime.leases),
                "paused": runtime.paused,
                "lag": await log.nats_call(lag),
                "last_acknowledged": {str(p): s for p, s in sorted(runtime.acked_seq.items())},
                **runtime.totals,
            }
        out["destinations"] = destinations
        out["errors"] = dict(self.errors)
        return out
