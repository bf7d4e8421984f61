"""Pull sources (``Source.run``) as supervised tasks.

Each pull-source instance runs in its own task. When ``run`` raises, the error is logged
and counted and the source restarts after a backoff (1 s doubling to 60 s, with jitter;
reset after a minute of healthy running), like a Kafka Connect task or a Vector source: a
database that is down for a while must not need an operator to restart the daemon. When
``run`` returns, the source is done and is not restarted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from headwater_spec import Source

from ._context import InstanceContext

if TYPE_CHECKING:
    from ._app import Daemon

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY_AFTER = 60.0
STOP_TIMEOUT = 10.0


def is_pull_source(source: Source) -> bool:
    return type(source).run is not Source.run


class PullSourceRunner:
    """Runs every pull source of the daemon and restarts the ones that fail."""

    def __init__(self, daemon: Daemon, *, first_backoff: float | None = None) -> None:
        self.daemon = daemon
        self.first_backoff = FIRST_BACKOFF if first_backoff is None else first_backoff
        self.logger = logging.getLogger("headwater.sources")
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts = daemon.metrics.counter(
            "headwater_source_restarts_total", "Pull-source restarts after a failure", ("source",)
        )

    async def start(self) -> None:
        for instance_id in self.daemon.sources:
            self.start_source(instance_id)

    def start_source(self, instance_id: str) -> bool:
        """Run the daemon's source ``instance_id`` if it is a pull source (at start, and
        when a reload adds or changes it); False for a push source."""
        source = self.daemon.sources[instance_id]
        if not is_pull_source(source):
            return False
        context = self.daemon.contexts[instance_id]
        self.tasks[instance_id] = asyncio.create_task(
            self._supervise(instance_id, source, context), name=f"source:{instance_id}"
        )
        return True

    async def stop_source(self, instance_id: str) -> None:
        """Cancel one pull source's task (a reload removed or changed it)."""
        task = self.tasks.pop(instance_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)

    async def _supervise(self, instance_id: str, source: Source, context: InstanceContext) -> None:
        backoff = self.first_backoff
        fields = {"source": instance_id}
        while True:
            started = time.monotonic()
            try:
                await source.run(context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started > HEALTHY_AFTER:
                    backoff = self.first_backoff
                delay = backoff * random.uniform(0.5, 1.0)
                self.restarts.labels(instance_id).inc()
                self.logger.error(
                    "source failed; restarting",
                    extra={
                        "fields": {
                            **fields,
                            "error": f"{type(exc).__name__}: {exc}",
                            "retry_in_s": round(delay, 2),
                        }
                    },
                )
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.logger.info("source finished", extra={"fields": fields})
            return

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks.values(), timeout=STOP_TIMEOUT)
