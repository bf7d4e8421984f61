"""Partition leases: which daemon delivers which partition of which destination.

A KV bucket ``<stream>-leases`` whose entries expire after ``ttl`` seconds (the bucket's
max age) holds:

- ``daemons.<daemon id>``: a heartbeat per live daemon (for reporting);
- ``members.<destination>.<daemon id>``: a heartbeat per daemon delivering a destination,
  so each can take its fair share of that destination's partitions (ceil(partitions /
  members)); counting per destination keeps every partition owned while daemons run
  different configs (a rolling change adding a destination);
- ``<destination>.<partition>``: the owner of a partition, written with compare-and-set.
  ``acquire`` creates the key only if it does not exist; ``renew`` rewrites it only if it
  still holds the revision this daemon wrote last, so two daemons never both renew one
  lease. A daemon that dies stops renewing; its keys expire after ``ttl`` and another
  daemon acquires them.

Every method runs on the log's NATS loop (``JetStreamLog.nats_call``); the expiry is the
server's clock, never compared with a daemon's.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ..log._kv_keys import escape

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

    from ..log import JetStreamLog

DAEMONS = "daemons"
MEMBERS = "members"


def lease_key(destination: str, partition: int) -> str:
    return f"{escape(destination.encode())}.{partition}"


async def open_lease_table(log: JetStreamLog, ttl: float) -> LeaseTable:
    """The stream's lease bucket (``<stream>-leases``), created if missing, opened on the
    log's NATS loop; shared by delivery partitions and replay jobs."""

    async def open_on_loop(_nc: object, js: JetStreamContext) -> LeaseTable:
        table = LeaseTable(js, f"{log.stream}-leases", ttl=ttl, replicas=log.replicas)
        await table.open()
        return table

    return await log.nats_call(open_on_loop)


class LeaseTable:
    def __init__(self, js: JetStreamContext, bucket: str, *, ttl: float, replicas: int) -> None:
        self._js = js
        self.bucket = bucket
        self.ttl = ttl
        self.replicas = replicas
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        from nats.js import api
        from nats.js.errors import BadRequestError, BucketNotFoundError

        try:
            self._kv = await self._js.key_value(self.bucket)
            return
        except BucketNotFoundError:
            pass
        config = api.KeyValueConfig(
            bucket=self.bucket,
            history=1,
            ttl=self.ttl,
            replicas=self.replicas,
            storage=api.StorageType.FILE,
            direct=False,
        )
        try:
            self._kv = await self._js.create_key_value(config)
        except BadRequestError:  # another daemon created it meanwhile
            self._kv = await self._js.key_value(self.bucket)

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the lease table is not open")
        return self._kv

    async def heartbeat(self, daemon_id: str, destinations: list[str]) -> None:
        await self.kv.put(f"{DAEMONS}.{daemon_id}", b"1")
        for destination in destinations:
            await self.kv.put(f"{_members(destination)}.{daemon_id}", b"1")

    async def _live(self, prefix: str) -> dict[str, bytes]:
        """Keys under ``prefix`` (one token) holding a value, and their values.

        Listed from the stream's per-subject counts, then read one by one from the stream
        leader: no consumer is created, so this keeps working while a failed node is still
        counted as a peer (consumer placement can pick it then)."""
        from nats.js.errors import KeyNotFoundError

        pre = f"$KV.{self.bucket}."
        info = await self._js.stream_info(f"KV_{self.bucket}", subjects_filter=f"{pre}{prefix}.>")
        out: dict[str, bytes] = {}
        for subject in info.state.subjects or {}:
            name = subject[len(pre) :]
            try:
                entry = await self.kv.get(name)
            except KeyNotFoundError:  # deleted (released) or expired meanwhile
                continue
            if entry.value:
                out[name[len(prefix) + 1 :]] = entry.value
        return out

    async def live_daemons(self) -> list[str]:
        return sorted(await self._live(DAEMONS))

    async def members(self, destination: str) -> list[str]:
        """The live daemons delivering ``destination``."""
        return sorted(await self._live(_members(destination)))

    async def owners(self, destination: str) -> dict[int, str]:
        """Partition -> owner of every lease of the destination held right now."""
        entries = await self._live(escape(destination.encode()))
        return {int(k): v.decode() for k, v in entries.items() if k.isdigit()}

    async def acquire(self, destination: str, partition: int, owner: str) -> int | None:
        """The lease's revision when this daemon now holds it; None when another does."""
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return await self.kv.create(lease_key(destination, partition), owner.encode())
        except KeyWrongLastSequenceError:
            return None

    async def renew(
        self, destination: str, partition: int, owner: str, revision: int
    ) -> int | None:
        """The new revision, or None when the lease was lost (expired and taken)."""
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return await self.kv.update(
                lease_key(destination, partition), owner.encode(), last=revision
            )
        except KeyWrongLastSequenceError:
            return None

    async def release(self, destination: str, partition: int, revision: int) -> None:
        """Give the lease up now (a clean stop), so another daemon need not wait for ttl."""
        with contextlib.suppress(Exception):
            await self.kv.delete(lease_key(destination, partition), last=revision)

    async def leave(self, daemon_id: str, destinations: list[str]) -> None:
        """Stop being counted at once (an empty value), rather than after ``ttl``."""
        with contextlib.suppress(Exception):
            for destination in destinations:
                await self.kv.put(f"{_members(destination)}.{daemon_id}", b"")
            await self.kv.put(f"{DAEMONS}.{daemon_id}", b"")


def _members(destination: str) -> str:
    return f"{MEMBERS}.{escape(destination.encode())}"


def fair_share(partitions: int, daemons: int) -> int:
    """How many partitions of one destination a daemon may hold."""
    return -(-partitions // max(daemons, 1))
