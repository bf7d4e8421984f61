"""The per-batch shortcuts of the router's hot path give what the per-event way gives: a
watermark finished a batch at a time, a batcher taking without a ``keep`` test."""

from __future__ import annotations

import random

import msgspec

from headwater.router import Batcher, BatchLimits, Watermark


def test_finishing_a_batch_moves_the_watermark_as_finishing_each_seq_does() -> None:
    rng = random.Random(7)
    for _ in range(300):
        low = rng.randint(1, 50)
        one, many = Watermark(low), Watermark(low)
        seqs = list(range(low - 5, low + 60))
        rng.shuffle(seqs)
        while seqs:
            batch = [seqs.pop() for _ in range(min(len(seqs), rng.randint(1, 12)))]
            if rng.random() < 0.2:
                batch.append(rng.randint(low - 5, low + 60))  # finished twice
            for seq in batch:
                one.finish(seq)
            many.finish_many(batch)
            assert (many.low, many.ahead) == (one.low, one.ahead)
    assert one.low == many.low


class Sized(msgspec.Struct):
    size: int


def test_taking_without_a_keep_test_takes_what_keeping_everything_takes() -> None:
    rng = random.Random(3)
    limits = BatchLimits(max_count=10, max_bytes=1000)
    for _ in range(300):
        plain, kept = Batcher[Sized](limits), Batcher[Sized](limits)
        sizes = [Sized(rng.choice([1, 50, 200, 600, 1500])) for _ in range(rng.randint(0, 30))]
        plain.put_many(sizes)
        kept.put_many(sizes)
        while len(plain) or len(kept):
            count, nbytes = rng.randint(0, 12), rng.randint(0, 2000)
            taken = plain.take(count, nbytes)
            assert taken == kept.take(count, nbytes, lambda _item: True)
            assert taken or not len(plain), "at least one"
            assert (len(plain), plain._bytes) == (len(kept), kept._bytes)
