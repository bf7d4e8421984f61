"""What every log backend derives the same way from its few primitives.

A backend implements ``scan_raw``, ``get_value``, ``items``, ``count``, ``page`` and
``write_batch``; record decoding, named cursors, single-key writes and the chunked ``walk``
of a table follow from those and live here once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from ._records import LogRecord, key_seq, seq_key

CURSORS = b"cursors"
WALK_CHUNK = 1000
_record_decoder = msgspec.msgpack.Decoder(LogRecord)


class DerivedLogMethods:
    """Mixin for log backends; the four primitives are the backend's own."""

    def scan_raw(
        self, start_seq: int = 1, end_seq: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        raise NotImplementedError

    def get_value(self, table: bytes, key: bytes) -> bytes | None:
        raise NotImplementedError

    def items(self, table: bytes, prefix: bytes = b"") -> list[tuple[bytes, bytes]]:
        raise NotImplementedError

    def count(self, table: bytes, prefix: bytes = b"") -> int:
        """How many keys of the table start with ``prefix``, read without their values."""
        raise NotImplementedError

    def page(
        self, table: bytes, prefix: bytes = b"", *, after: bytes | None = None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """The first ``limit`` (key, value) pairs, in key order, whose key starts with
        ``prefix`` and sorts after ``after``; memory is bounded by ``limit``, not the table."""
        raise NotImplementedError

    def write_batch(self, ops: Sequence[tuple[bytes, bytes, bytes | None]]) -> None:
        raise NotImplementedError

    def walk(
        self, table: bytes, prefix: bytes = b"", *, chunk: int = WALK_CHUNK
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """The (key, value) pairs whose key starts with ``prefix``, ``chunk`` at a time, for
        a pass over a large table in bounded memory. Every entry present when the walk
        starts and not deleted meanwhile comes exactly once; entries written during the
        walk may or may not come. The caller may delete what it was given before asking
        for the next chunk. LMDB walks in key order, one short read per chunk."""
        after: bytes | None = None
        while True:
            rows = self.page(table, prefix, after=after, limit=chunk)
            if not rows:
                return
            after = rows[-1][0]
            yield rows
            if len(rows) < chunk:
                return

    def scan(self, start_seq: int = 1, end_seq: int | None = None) -> Iterator[LogRecord]:
        """Records with ``start_seq <= seq <= end_seq``, in order."""
        decode = _record_decoder.decode
        for _seq, raw in self.scan_raw(start_seq, end_seq):
            yield decode(raw)

    def get_cursor(self, name: str) -> int | None:
        raw = self.get_value(CURSORS, name.encode())
        return None if raw is None else key_seq(raw)

    def set_cursor(self, name: str, seq: int) -> None:
        self.put_value(CURSORS, name.encode(), seq_key(seq))

    def cursors(self) -> dict[str, int]:
        return {k.decode(): key_seq(v) for k, v in self.items(CURSORS)}

    def put_value(self, table: bytes, key: bytes, value: bytes) -> None:
        self.write_batch([(table, key, value)])

    def delete_value(self, table: bytes, key: bytes) -> None:
        self.write_batch([(table, key, None)])
