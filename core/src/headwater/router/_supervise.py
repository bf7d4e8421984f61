"""Watching a delivery loop's tasks, and starting the loop again when one of them fails.

A reader, lane or committer that raises (a bug of ours, an exception a connector let
escape the lane's handling, a log error) would otherwise end on its own while the daemon
looks healthy and the destination silently stops getting events. The supervisor of a loop
waits for any of its tasks to end. When one does, the loop stops the others, reports the
failure (logged once with its traceback, counted, state ``failed`` with the error and its
time) and, after a backoff (1 s doubling to 60 s, back to 1 s once a run lasted a minute),
opens its state again from the log and starts over, exactly as after a crash: delivery
resumes at the durable cursor, so what was in flight is read and sent again (at least
once) and nothing is skipped. The connector instance is kept.

A normal stop (shutdown, reload, pause) cancels the supervisor first, so a cancellation
is never taken for a failure; a closed log ends delivery without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from ..log import LogClosedError
from ._cancel import cancel_and_wait

_log = logging.getLogger("headwater.router")

RESTART_FIRST = 1.0
RESTART_MAX = 60.0
HEALTHY_AFTER = 60.0
"""Seconds a restarted loop must run without failing before the backoff starts again at
``RESTART_FIRST``."""


class RestartBackoff:
    """The wait before each restart: ``first`` doubling to ``most``, reset after a run of
    ``healthy_after`` seconds."""

    def __init__(
        self,
        first: float = RESTART_FIRST,
        most: float = RESTART_MAX,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self.first = first
        self.most = most
        self.healthy_after = healthy_after
        self._next = first

    def delay(self, ran_for: float) -> float:
        if ran_for >= self.healthy_after:
            self._next = self.first
        delay = self._next
        self._next = min(self.most, delay * 2)
        return delay


class Restartable(Protocol):
    """What a supervised loop offers (DestinationLoop, ReplayRun)."""

    restarts: RestartBackoff
    label: str
    """Who it is in log lines ("destination hook")."""
    log_extra: dict[str, Any]

    def watched(self) -> Sequence[asyncio.Task[None]]:
        """The tasks that must keep running."""

    def may_finish(self, task: asyncio.Task[None]) -> bool:
        """Whether ``task`` returning (without an error) is expected."""

    async def halt(self) -> None:
        """Cancel every task and wait for them; the in-memory state is not saved."""

    async def failed(self, task: str, error: BaseException, retry_in: float) -> None:
        """Report the failure (log, counters, durable state)."""

    async def reopen(self) -> None:
        """Open the state from the log again and start the tasks."""


class LoopTasks:
    """The running tasks of a supervised loop and how to halt them (a mixin of
    DestinationLoop and ReplayRun, which set both in ``__init__``)."""

    _tasks: list[asyncio.Task[None]]
    """The reader first, then the lanes."""
    _committer: asyncio.Task[None] | None

    def watched(self) -> list[asyncio.Task[None]]:
        return [*self._tasks, *([self._committer] if self._committer is not None else [])]

    async def halt(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self._committer is not None:
            await cancel_and_wait([self._committer])
            self._committer = None


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def first_failure(
    target: Restartable,
) -> tuple[asyncio.Task[None], BaseException] | None:
    """Wait until a watched task fails and return it with its error (a task cancelled by
    someone else, or returning when it should not, counts); None once all ended well."""
    pending = set(target.watched())
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled():
                return task, asyncio.CancelledError("cancelled by something other than stop")
            error = task.exception()
            if error is not None:
                return task, error
            if not target.may_finish(task):
                return task, RuntimeError("the task returned; it should run until stopped")
    return None


async def supervise(target: Restartable) -> None:
    """Restart ``target`` whenever one of its tasks fails, until cancelled (by ``stop``)
    or the log is closed."""
    started = time.monotonic()
    while True:
        failure = await first_failure(target)
        if failure is None:
            return
        task, error = failure
        await target.halt()
        if isinstance(error, LogClosedError):
            _log.warning(
                "%s: the log was closed; delivery stops", target.label, extra=target.log_extra
            )
            return
        name = task.get_name()
        while True:
            delay = target.restarts.delay(time.monotonic() - started)
            try:
                await target.failed(name, error, delay)
            except LogClosedError:
                return
            except Exception:  # the restart below matters more than the report
                _log.exception(
                    "%s: the failure could not be saved", target.label, extra=target.log_extra
                )
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                await target.reopen()
            except LogClosedError:
                return
            except Exception as exc:  # try again later, as for a failed task
                await target.halt()
                name, error = "start", exc
                continue
            break
