"""`headwater destinations forget` deletes a destination's dead letters and parked retries
in chunks, the cursor last: a forget killed halfway leaves a destination still known (its
cursor kept) that running forget again finishes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from headwater.lifecycle import forget_destination, known_destinations
from headwater.lifecycle._state import FORGET_CHUNK
from headwater.log import LmdbLog
from headwater.router import DEAD_LETTERS, RETRIES, count_dead_letters
from headwater.router._records import cursor_name, event_key, event_prefix

SideOp = tuple[bytes, bytes, bytes | None]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LmdbLog]:
    with LmdbLog(tmp_path / "data", sync=False) as opened:
        yield opened


def fill(log: LmdbLog, destination: str, letters: int, retries: int) -> None:
    log.set_cursor(cursor_name(destination), 4711)
    ops: list[SideOp] = [
        (DEAD_LETTERS, event_key(destination, seq), b"x" * 50) for seq in range(letters)
    ]
    ops += [(RETRIES, event_key(destination, seq), b"y" * 50) for seq in range(retries)]
    log.write_batch(ops)


class Killed(Exception):
    pass


def test_forget_deletes_in_chunks_and_a_second_forget_finishes_a_killed_one(
    log: LmdbLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(log, "gone", letters=3 * FORGET_CHUNK + 17, retries=2 * FORGET_CHUNK + 5)
    fill(log, "kept", letters=10, retries=3)
    writes: list[int] = []
    real = log.write_batch

    def dying(ops: Sequence[SideOp]) -> None:
        if len(writes) == 4:  # killed after the retries (3 writes) and a chunk of letters
            raise Killed
        writes.append(len(ops))
        real(ops)

    monkeypatch.setattr(log, "write_batch", dying)
    with pytest.raises(Killed):
        forget_destination(log, "gone")
    monkeypatch.setattr(log, "write_batch", real)
    assert max(writes) <= FORGET_CHUNK
    assert log.count(RETRIES, event_prefix("gone")) == 0
    assert count_dead_letters(log, "gone") == 2 * FORGET_CHUNK + 17
    # half forgotten: still known by its cursor, so it is listed and forget can finish it
    assert log.get_cursor(cursor_name("gone")) == 4711
    assert "gone" in known_destinations(log)

    result = forget_destination(log, "gone")
    assert (result.cursor, result.dead_letters, result.retries) == (4711, 2 * FORGET_CHUNK + 17, 0)
    assert count_dead_letters(log, "gone") == 0
    assert log.get_cursor(cursor_name("gone")) is None
    assert known_destinations(log) == ["kept"]
    assert count_dead_letters(log, "kept") == 10
    assert log.count(RETRIES, event_prefix("kept")) == 3
