"""The side tables of a JetStream log (cursors, checkpoints, dead letters, replay jobs,
retries, destinations, meta) as one KV bucket, ``<table>.<escaped key>`` per entry.

The tables are LMDB's, so a misspelt table fails the same way on both backends. A batch of
writes is applied in order, each one durable when it returns; it is not all-or-nothing
(JetStream 2.9 has no multi-key transaction): callers order their writes so that any
prefix is a safe state (dead letters before the cursor that passes them).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING

from ._errors import LogError
from ._jetstream_read import StreamReader
from ._jetstream_retry import Retrier
from ._kv_keys import kv_key, split_kv_key, table_token
from ._lmdb import CURSORS, META, SIDE_TABLES

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

SideOp = tuple[bytes, bytes, bytes | None]
TABLES = (CURSORS, META, *SIDE_TABLES)
READ_CHUNK = 1024


def known(table: bytes) -> bytes:
    if table not in TABLES:
        names = ", ".join(t.decode() for t in TABLES)
        raise LogError(f"no side table {table!r}; the tables are {names}")
    return table


class StateBucket:
    """Runs on the log's NATS loop; ``kv`` None means a read-only log without state yet."""

    def __init__(
        self, nc: Client, js: JetStreamContext, bucket: str, kv: KeyValue | None, retry: Retrier
    ) -> None:
        self._nc = nc
        self._js = js
        self.bucket = bucket
        self.kv = kv
        self._retry = retry

    async def get(self, table: bytes, key: bytes) -> bytes | None:
        from nats.js.errors import KeyNotFoundError

        kv = self.kv
        if kv is None:
            return None
        name = kv_key(known(table), key)
        try:
            entry = await self._retry(lambda: kv.get(name), f"reading {name}")
        except KeyNotFoundError:
            return None
        return entry.value if entry.value is not None else b""

    async def write(self, ops: Sequence[SideOp]) -> None:
        kv = self.kv
        if kv is None:
            raise LogError("the log has no state bucket (opened read-only)")
        for table, key, value in ops:
            name = kv_key(known(table), key)

            async def apply(name: str = name, value: bytes | None = value) -> None:
                if value is None:
                    await kv.delete(name)
                else:
                    await kv.put(name, value)

            await self._retry(apply, f"writing {name}")

    async def items(self, table: bytes, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        """The table's live entries whose key starts with ``prefix``, sorted by key."""
        out: list[tuple[bytes, bytes]] = []
        async for chunk in self.chunks(table, prefix):
            out += chunk
        out.sort()
        return out

    async def count(self, table: bytes, prefix: bytes = b"") -> int:
        """Live keys starting with ``prefix``, counted from a headers-only read."""
        n = 0
        async for chunk in self.chunks(table, prefix, keys_only=True):
            n += len(chunk)
        return n

    async def page(
        self, table: bytes, prefix: bytes, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """The first ``limit`` live entries after ``after`` in key order. The bucket keeps
        no key order, so this reads every key of the table (headers only), keeps the
        ``limit`` smallest, then gets their values: time grows with the table, memory
        with ``limit``."""
        if limit <= 0:
            return []
        smallest: list[_Desc] = []  # the `limit` smallest keys so far, largest on top
        async for chunk in self.chunks(table, prefix, keys_only=True):
            for key, _ in chunk:
                if after is not None and key <= after:
                    continue
                if len(smallest) < limit:
                    heapq.heappush(smallest, _Desc(key))
                elif key < smallest[0].key:
                    heapq.heapreplace(smallest, _Desc(key))
        keys = sorted(d.key for d in smallest)
        out: list[tuple[bytes, bytes]] = []
        for key in keys:
            value = await self.get(table, key)
            if value is not None:  # deleted since the read
                out.append((key, value))
        return out

    async def chunks(
        self, table: bytes, prefix: bytes = b"", *, keys_only: bool = False, fetch: int = READ_CHUNK
    ) -> AsyncGenerator[list[tuple[bytes, bytes]]]:
        """The table's live entries whose key starts with ``prefix``, in chunks, in the
        bucket's (write) order, through one short-lived consumer delivering the last value
        of each key (``keys_only``: headers only, the values come back empty). Entries
        written during the read come too. At most ``fetch`` messages are held at once."""
        if self.kv is None:
            return
        pre = f"$KV.{self.bucket}."
        reader = StreamReader(
            self._nc,
            self._js,
            f"KV_{self.bucket}",
            filter_subject=f"{pre}{table_token(known(table))}.>",
            last_per_subject=True,
            headers_only=keys_only,
        )
        try:
            if not await reader.open():
                return
            while True:
                chunk = await reader.fetch(fetch)
                out: list[tuple[bytes, bytes]] = []
                for message in chunk:
                    op = (message.headers or {}).get("KV-Operation")
                    if op in ("DEL", "PURGE"):
                        continue
                    _table, key = split_kv_key(message.subject[len(pre) :])
                    if key.startswith(prefix):
                        out.append((key, b"" if keys_only else message.data))
                if out:
                    yield out
                if not chunk or reader.pending == 0:
                    break
        finally:
            await reader.close()


class _Desc:
    """Orders keys in reverse, so heapq's min-heap keeps the largest of the smallest on top."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key

    def __lt__(self, other: _Desc) -> bool:
        return self.key > other.key
