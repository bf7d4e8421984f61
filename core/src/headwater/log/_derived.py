"""What every log backend derives the same way from its few primitives.

A backend implements ``scan_raw``, ``get_value``, ``items`` and ``write_batch``; record
decoding, named cursors and single-key writes follow from those and live here once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from ._records import LogRecord, key_seq, seq_key

CURSORS = b"cursors"
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

    def write_batch(self, ops: Sequence[tuple[bytes, bytes, bytes | None]]) -> None:
        raise NotImplementedError

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
