"""The building blocks of shared delivery against a real NATS: partition leases (compare-
and-set, expiry) and a partition's durable consumer (reset to its ack floor, in order;
a delivery lost on the way is noticed, not passed over)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from headwater.log import JetStreamLog, LogError
from headwater.log._jetstream_read import StreamReader, ack_metadata
from headwater.log._nats_connect import NatsOptions
from headwater.shared_delivery import LeaseTable, fair_share
from headwater.shared_delivery._consumer import (
    Delivery,
    DeliveryGap,
    Puller,
    consumer_name,
    consumer_start,
    create_consumer,
    restart_point,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def leases(js: Any) -> AsyncIterator[LeaseTable]:
    bucket = f"hwtest-leases-{uuid.uuid4().hex[:8]}"
    table = LeaseTable(js, bucket, ttl=5.0, replicas=1)  # no CI stall outlives it
    await table.open()
    yield table
    await js.delete_key_value(bucket)


def test_fair_share_rounds_up_so_every_partition_has_an_owner() -> None:
    assert [fair_share(16, d) for d in (0, 1, 2, 3, 5, 16, 40)] == [16, 16, 8, 6, 4, 1, 1]


async def test_a_lease_has_one_owner_until_released(leases: LeaseTable) -> None:
    first = await leases.acquire("hook", 3, "daemon-a")
    assert first is not None
    assert await leases.acquire("hook", 3, "daemon-b") is None
    assert await leases.owners("hook") == {3: "daemon-a"}
    renewed = await leases.renew("hook", 3, "daemon-a", first)
    assert renewed is not None and renewed > first
    assert await leases.renew("hook", 3, "daemon-b", first) is None, "a stale revision renews"
    await leases.release("hook", 3, renewed)
    assert await leases.owners("hook") == {}
    assert await leases.acquire("hook", 3, "daemon-b") is not None


async def test_a_lease_nobody_renews_expires_and_can_be_taken(leases: LeaseTable) -> None:
    revision = await leases.acquire("hook", 0, "dead-daemon")
    assert revision is not None
    deadline = time.monotonic() + 20
    while await leases.acquire("hook", 0, "survivor") is None:
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.25)
    assert await leases.renew("hook", 0, "dead-daemon", revision) is None


async def test_daemons_are_counted_per_destination_and_leave_at_once(
    leases: LeaseTable,
) -> None:
    await leases.heartbeat("a", ["hook", "mixpanel"])
    await leases.heartbeat("b", ["hook"])
    assert await leases.live_daemons() == ["a", "b"]
    assert await leases.members("hook") == ["a", "b"]
    assert await leases.members("mixpanel") == ["a"]
    await leases.leave("a", ["hook", "mixpanel"])
    assert await leases.live_daemons() == ["b"]
    assert await leases.members("hook") == ["b"]
    assert await leases.members("mixpanel") == []


def test_consumer_names_stay_distinct_and_valid() -> None:
    assert consumer_name("hook", 2) == "hw-hook-p2"
    odd = consumer_name("my hook.eu", 0)
    assert " " not in odd and "." not in odd
    assert odd != consumer_name("my_hook_eu", 0)


@pytest.fixture
def ten_events(nats_url: str) -> Iterator[JetStreamLog]:
    """A one-partition log holding seqs 1..10 (dropped afterwards)."""
    log = JetStreamLog(
        NatsOptions(servers=(nats_url,)), f"hwtest-{uuid.uuid4().hex[:10]}", partitions=1
    )
    log.append_sync("web", [{"type": "track", "messageId": f"m{i}"} for i in range(10)])
    try:
        yield log
    finally:
        log.drop()
        log.close()


async def reset(js: Any, stream: str, start_seq: int) -> int:
    """(Re)create partition 0's consumer of destination ``hook`` right after its ack floor
    (at ``start_seq`` when there is none), as the worker does; return where it starts."""
    subject, name = f"{stream}.p.0", consumer_name("hook", 0)
    start = await consumer_start(js, stream, name) or start_seq
    await create_consumer(js, stream, name, subject, start, ack_wait=300, max_ack_pending=100)
    return start


async def pull_all(puller: Puller, n: int | None = None) -> list[Delivery]:
    """The next ``n`` deliveries (all that are left when None): one pull may hand over
    fewer, as NATS may send a batch in more than one write."""
    out: list[Delivery] = []
    while n is None or len(out) < n:
        got = await puller.pull(100 if n is None else n - len(out), 2.0, 0.0)
        if not got:
            break
        out += got
    return out


async def test_a_reset_consumer_resumes_after_its_ack_floor_in_order(
    ten_events: JetStreamLog,
) -> None:
    stream, name = ten_events.stream, consumer_name("hook", 0)

    async def scenario(nc: Any, js: Any) -> list[list[int]]:
        assert await reset(js, stream, 3) == 3
        puller = Puller(nc, stream, name)
        await puller.open()
        first = await pull_all(puller, 4)
        await puller.ack(first[1])  # seqs 3 and 4 done; 5 and 6 were in flight
        await puller.close()
        assert await reset(js, stream, 3) == 5
        again = Puller(nc, stream, name)
        await again.open()
        second = await pull_all(again)
        await again.close()
        return [[d.seq for d in first], [d.seq for d in second]]

    first, second = await ten_events.nats_call(scenario)
    assert first == [3, 4, 5, 6]
    assert second == [5, 6, 7, 8, 9, 10]


async def test_a_delivery_lost_on_the_way_fails_the_pull_and_a_reset_brings_it_back(
    ten_events: JetStreamLog,
) -> None:
    """A message the server sent but the client never got (a node failed mid-pull) must
    not be passed over: with ack policy all, acknowledging a later one would acknowledge
    it too. The jump in the consumer sequence fails the pull; a reset delivers it."""
    stream, name = ten_events.stream, consumer_name("hook", 0)

    async def scenario(nc: Any, js: Any) -> tuple[list[int], list[int]]:
        await reset(js, stream, 1)
        lossy = Puller(nc, stream, name)
        receive = lossy._on_msg

        async def lose_the_third(msg: Any) -> None:
            if ack_metadata(msg.reply).stream_seq != 3:
                await receive(msg)

        lossy._on_msg = lose_the_third  # type: ignore[method-assign]
        await lossy.open()
        handed: list[int] = []
        with pytest.raises(DeliveryGap, match="arrived after 2"):
            for _ in range(5):
                handed += [d.seq for d in await lossy.pull(10, 2.0, 0.05)]
        await lossy.close()
        assert await reset(js, stream, 1) == 1
        again = Puller(nc, stream, name)
        await again.open()
        resent = [d.seq for d in await pull_all(again)]
        await again.close()
        return handed, resent

    handed, resent = await ten_events.nats_call(scenario)
    assert not [seq for seq in handed if seq >= 3], handed  # nothing past the loss
    assert resent == list(range(1, 11))


async def read_losing(log: JetStreamLog, lost: int, error: str) -> list[int]:
    """Read the whole stream 3 at a time while message ``lost`` is lost on the way;
    the read must fail with ``error``. Returns the seqs read before it failed."""

    async def scenario(nc: Any, js: Any) -> list[int]:
        reader = StreamReader(nc, js, log.stream)
        receive = reader._on_msg

        async def lose(msg: Any) -> None:
            if not msg.reply or ack_metadata(msg.reply).stream_seq != lost:
                await receive(msg)

        reader._on_msg = lose  # type: ignore[method-assign]
        read: list[int] = []
        try:
            await reader.open()
            with pytest.raises(LogError, match=error):
                while chunk := await reader.fetch(3):
                    read += [m.seq for m in chunk]
        finally:
            await reader.close()
        return read

    return await log.nats_call(scenario)


async def test_a_stream_read_fails_at_a_lost_message_instead_of_skipping_it(
    ten_events: JetStreamLog,
) -> None:
    assert await read_losing(ten_events, 5, "delivery 6 arrived after 4") == [1, 2, 3]


async def test_a_stream_read_fails_when_its_last_message_is_lost(
    ten_events: JetStreamLog,
) -> None:
    """A loss at the end of a read leaves no jump behind it; the read asks the consumer."""
    read = await read_losing(ten_events, 10, r"sent 10 message\(s\) and 9 arrived")
    assert read == list(range(1, 10))


async def test_a_stream_read_fails_when_its_consumer_is_gone(ten_events: JetStreamLog) -> None:
    """The node holding the read's (one-replica) consumer died: the rest is not there."""

    async def scenario(nc: Any, js: Any) -> list[int]:
        reader = StreamReader(nc, js, ten_events.stream)
        read: list[int] = []
        try:
            await reader.open()
            read += [m.seq for m in await reader.fetch(3)]
            await js.delete_consumer(ten_events.stream, reader._consumer)
            with pytest.raises(LogError, match=r"timed out|read again"):
                await reader.fetch(3, timeout=1.0)
        finally:
            await reader.close()
        return read

    assert await ten_events.nats_call(scenario) == [1, 2, 3]


async def test_a_consumer_deleted_and_not_added_again_resumes_at_its_saved_point(
    ten_events: JetStreamLog,
) -> None:
    """Recreating a partition's consumer is a delete and an add; when only the delete
    lands (a NATS failover), the next owner starts where delivery was, not at the
    destination's start (the whole history again)."""
    stream, name = ten_events.stream, consumer_name("hook", 0)
    assert await restart_point(ten_events, "hook", 0, start_seq=1) == 1

    async def deliver_four_then_lose_the_consumer(nc: Any, js: Any) -> None:
        await reset(js, stream, 1)
        puller = Puller(nc, stream, name)
        await puller.open()
        await puller.ack((await pull_all(puller, 4))[-1])
        await puller.close()

    await ten_events.nats_call(deliver_four_then_lose_the_consumer)
    assert await restart_point(ten_events, "hook", 0, start_seq=1) == 5  # saved, then:

    async def delete(nc: Any, js: Any) -> None:
        await js.delete_consumer(stream, name)

    await ten_events.nats_call(delete)
    assert await restart_point(ten_events, "hook", 0, start_seq=1) == 5
    assert await restart_point(ten_events, "other", 0, start_seq=1) == 1


async def test_a_stream_read_goes_past_messages_deleted_while_it_reads(
    ten_events: JetStreamLog,
) -> None:
    """Deletions mid-read (KV keys written again) leave the pending count in the replies
    too high; the server then holds a no_wait pull instead of answering it. The consumer
    knows nothing is left: the read ends with what is there, without an error."""

    ten_events.append_sync("web", [{"type": "track", "messageId": f"n{i}"} for i in range(30)])

    async def scenario(nc: Any, js: Any) -> list[int]:
        reader = StreamReader(nc, js, ten_events.stream)
        read: list[int] = []
        try:
            await reader.open()
            read += [m.seq for m in await reader.fetch(5)]
            for seq in range(20, 25):
                await js.delete_msg(ten_events.stream, seq)
            while chunk := await reader.fetch(5, timeout=1.0):
                read += [m.seq for m in chunk]
                if reader.pending == 0:
                    break
        finally:
            await reader.close()
        return read

    expected = [seq for seq in range(1, 41) if not 20 <= seq < 25]
    assert await ten_events.nats_call(scenario) == expected
