"""The source's position: the (cursor, key...) of the last row emitted, as JSON bytes.

The columns are stored beside the values so that a checkpoint taken with another cursor or
key is refused with a clear message instead of being compared with the wrong column.
"""

from __future__ import annotations

import msgspec

from ._connection import PostgresError
from ._source_config import SourceConfig

FORMAT_VERSION = 1


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    v: int = FORMAT_VERSION
    cursor_column: str
    key_columns: tuple[str, ...]
    cursor: str
    keys: tuple[str, ...]

    def params(self) -> dict[str, str]:
        """Query parameters for ``_source_sql.after_condition``."""
        out = {"c": self.cursor}
        for i, key in enumerate(self.keys):
            out[f"k{i}"] = key
        return out


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Checkpoint)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return _encoder.encode(checkpoint)


def decode_checkpoint(data: bytes | None, config: SourceConfig, *, who: str) -> Checkpoint | None:
    """The stored checkpoint, checked against the config; None when there is none yet."""
    if not data:
        return None
    try:
        checkpoint = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise PostgresError(
            f"{who}: the stored checkpoint is unreadable ({exc}); rename the source instance "
            "to read the table again from the start"
        ) from None
    if checkpoint.v != FORMAT_VERSION:
        raise PostgresError(f"{who}: checkpoint format {checkpoint.v} is not supported")
    tie = config.tie_breakers
    if checkpoint.cursor_column != config.cursor_column or checkpoint.key_columns != tie:
        raise PostgresError(
            f"{who}: the checkpoint was taken on cursor {checkpoint.cursor_column!r} with keys "
            f"{list(checkpoint.key_columns)}, but `cursor_column` is now "
            f"{config.cursor_column!r} with `key_columns` {list(config.key_columns)}; restore "
            "them, or rename the source instance to read the table again from the start"
        )
    return checkpoint
