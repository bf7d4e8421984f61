"""Replay job leases: which daemon runs which replay job right now.

Kept in the same expiring KV bucket as the partition leases (``<stream>-leases``, see
``shared_delivery/_leases.py``), under ``=00replay.<escaped job id>``. The ``=00`` prefix
is the escaped form of a NUL byte, which no destination id contains, so a job's lease
never collides with a partition lease (``<escaped destination>.<partition>``), a heartbeat
(``daemons.`` / ``members.``) or with another job's. Acquire is create-if-absent, renew is
compare-and-set on the revision this daemon wrote last, release deletes at that revision:
two daemons never both hold one job, and a killed holder's lease expires with the bucket's
``ttl`` (6 s by default).

Every method runs on the log's NATS loop (``JetStreamLog.on_nats_loop``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..log._kv_keys import escape

if TYPE_CHECKING:
    from ..shared_delivery._leases import LeaseTable

_PREFIX = "=00replay"


def replay_lease_key(job_id: str) -> str:
    return f"{_PREFIX}.{escape(job_id.encode())}"


class ReplayLeases:
    def __init__(self, table: LeaseTable) -> None:
        self.table = table

    async def acquire(self, job_id: str, owner: str) -> int | None:
        """The lease's revision when this daemon now runs the job; None when another does."""
        return await self.acquire_key(replay_lease_key(job_id), owner)

    async def acquire_key(self, key: str, owner: str) -> int | None:
        """Create-if-absent on any key of the bucket (the redrive lease uses it too)."""
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return await self.table.kv.create(key, owner.encode())
        except KeyWrongLastSequenceError:
            return None

    async def release_key(self, key: str, revision: int) -> None:
        with contextlib.suppress(Exception):
            await self.table.kv.delete(key, last=revision)

    async def renew(self, job_id: str, owner: str, revision: int) -> int | None:
        """The new revision, or None when the lease was lost (expired and taken)."""
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return await self.table.kv.update(
                replay_lease_key(job_id), owner.encode(), last=revision
            )
        except KeyWrongLastSequenceError:
            return None

    async def release(self, job_id: str, revision: int) -> None:
        await self.release_key(replay_lease_key(job_id), revision)

    async def holder(self, job_id: str) -> str | None:
        """The daemon running the job now, if any."""
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.table.kv.get(replay_lease_key(job_id))
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None
