"""A commit cut short by a cancel (a stop, a failed task halting the committer) still lands
whole, and ``landed`` waits for it: on JetStream a commit is many KV writes on the log's
own loop, which a cancel would otherwise interrupt halfway, losing the rest."""

from __future__ import annotations

import asyncio

import pytest

from headwater.log import AnyLog
from headwater.router import RETRIES, DestinationRecord
from headwater.router._records import event_key, event_prefix
from headwater.router._state import DeliveryState

pytestmark = pytest.mark.timeout(120)

OPS = 2_000


async def test_a_cancelled_commit_lands_whole_and_landed_waits_for_it(
    backend: tuple[str, AnyLog],
) -> None:
    _name, log = backend
    state = DeliveryState(log, "d", 1, DestinationRecord())
    for seq in range(1, OPS + 1):
        state.stage(RETRIES, event_key("d", seq), b"v%d" % seq)
    state.finish(1)
    committing = asyncio.create_task(state.commit())
    await asyncio.sleep(0)  # sent to the log; the first writes may land, not all of them
    committing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await committing
    await state.landed()
    assert log.count(RETRIES, event_prefix("d")) == OPS
    assert log.get_value(RETRIES, event_key("d", OPS)) == b"v%d" % OPS
    assert state.saved_cursor == 2 and state.saved(RETRIES, event_key("d", OPS))
    # the next commit follows it, nothing is left staged
    state.stage(RETRIES, event_key("d", 1), None)
    await state.commit()
    assert log.count(RETRIES, event_prefix("d")) == OPS - 1
