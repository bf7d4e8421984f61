"""Stopping a set of tasks for sure.

On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives just as the
awaitable it wraps completes (bpo-42130, gone with the 3.12 rewrite of ``wait_for``). A
lane woken by new events at the moment it is cancelled then goes back to waiting for an
event nobody will set, and whoever awaits it (a reload removing the destination, a
shutdown) hangs. So the tasks are cancelled again until each has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RETRY_EVERY = 0.05


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task and return once all are done (their errors are dropped: a task
    being stopped has nothing left to report)."""
    current = asyncio.current_task()
    everything = [t for t in tasks if t is not current]
    pending = {t for t in everything if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=RETRY_EVERY)
    for task in everything:
        if not task.cancelled():
            task.exception()
