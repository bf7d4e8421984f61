"""Retention as a daemon service: every minute, trim what the policy no longer keeps.

The trim runs on a worker thread in short transactions (see ``LmdbLog.trim``), so
ingestion only ever waits for one of them. When a destination's cursor or an unfinished
replay holds the trim back, the service logs a warning naming it (again every ten minutes
while it lasts) and keeps those events: a lagging or paused destination never loses
history to retention. Only the LMDB log is trimmed here; a JetStream stream keeps its
history by its own limits (docs/scale.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec

from ..config import Config, ConfigError, RetentionPolicy, parse_retention
from ..log import LmdbLog
from ._plan import TrimPlan, plan_trim

_log = logging.getLogger("headwater.retention")
INTERVAL = 60.0
FIRST_PASS_AFTER = 5.0
WARN_EVERY = 600.0


class TrimResult(msgspec.Struct, kw_only=True):
    plan: TrimPlan
    deleted: int


def policy_of(config: Config) -> RetentionPolicy:
    """The config's retention policy; ConfigError naming the key when it is malformed."""
    try:
        return parse_retention(config.workspace.retention)
    except ValueError as exc:
        raise ConfigError(str(exc), file=config.path, path="workspace.retention") from None


class RetentionService:
    name = "retention"

    def __init__(
        self,
        log: LmdbLog,
        config: Callable[[], Config],
        *,
        interval: float = INTERVAL,
        first_pass_after: float = FIRST_PASS_AFTER,
    ) -> None:
        self.log = log
        self.config = config
        self.interval = interval
        self.first_pass_after = first_pass_after
        self.deleted = 0
        self._warned: dict[str, tuple[int, float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        policy = policy_of(self.config())
        if not policy.keeps_everything:
            _log.info("retention: %s", policy.text)
        self._task = asyncio.create_task(self._run(), name="hw-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self.first_pass_after)
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a failed pass is retried at the next one
                _log.error("retention pass failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def run_once(self) -> TrimResult:
        config = self.config()
        policy = policy_of(config)
        plan = plan_trim(self.log, policy, config)
        self._warn(plan)
        deleted = 0
        if plan.allowed:
            deleted = await asyncio.to_thread(self.log.trim, plan.allowed)
            self.deleted += deleted
            if deleted:
                _log.info(
                    "retention trimmed %d events (up to seq %d)",
                    deleted,
                    plan.allowed,
                    extra={"fields": {"deleted": deleted, "up_to_seq": plan.allowed}},
                )
        return TrimResult(plan=plan, deleted=deleted)

    def _warn(self, plan: TrimPlan) -> None:
        now = time.monotonic()
        for hold in plan.holds:
            seen = self._warned.get(hold.holder)
            if seen is not None and seen[0] == hold.seq and now - seen[1] < WARN_EVERY:
                continue
            self._warned[hold.holder] = (hold.seq, now)
            _log.warning(
                "retention holds at seq %d for %s (%s); %d older events are kept past the "
                "retention policy until it moves on",
                hold.seq,
                hold.holder,
                hold.reason,
                max(0, plan.wanted - hold.seq + 1),
                extra={"fields": {"holder": hold.holder, "seq": hold.seq, "wanted": plan.wanted}},
            )
        holding = {h.holder for h in plan.holds}
        for holder in list(self._warned):
            if holder not in holding:
                del self._warned[holder]
