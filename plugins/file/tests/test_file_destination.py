"""The `file` destination as a user sees it: found through its entry point as the
`headwater-file` distribution, and writing each event as one JSON line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from headwater.plugins import load_plugins
from headwater_file import FileDestination
from headwater_spec import Delivered, Retry, event_from_dict
from headwater_spec.conformance import MemoryContext


def test_the_file_connector_is_found_as_its_own_distribution() -> None:
    loaded = load_plugins(only={"headwater-file"}).get("file")
    assert loaded.cls is FileDestination
    assert loaded.distribution == "headwater-file"
    assert loaded.spec.direction == "out" and list(loaded.spec.regions) == ["any"]


def test_events_are_appended_as_json_lines_relative_to_the_data_dir(tmp_path: Path) -> None:
    context = MemoryContext(instance_id="archive", data_dir=tmp_path)
    sent = [
        {"type": "track", "event": "A", "userId": "u", "messageId": "1", "custom": {"k": 1}},
        {"type": "identify", "userId": "u", "traits": {"plan": "pro"}, "messageId": "2"},
    ]

    async def deliver() -> None:
        destination = FileDestination({"path": "out/events.jsonl"}, context)
        assert (await destination.check()).ok
        outcomes = await destination.send([event_from_dict(e) for e in sent])
        assert outcomes == [Delivered()] * 2
        await destination.send([event_from_dict(sent[0])])
        await destination.close()

    asyncio.run(deliver())
    lines = (tmp_path / "out" / "events.jsonl").read_bytes().splitlines()
    assert [msgspec.json.decode(line) for line in lines] == [*sent, sent[0]]


def test_an_unwritable_path_is_a_retry_and_a_failed_check(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    context = MemoryContext(data_dir=tmp_path)

    async def deliver() -> None:
        destination = FileDestination({"path": "blocker/events.jsonl"}, context)
        check = await destination.check()
        assert not check.ok and "cannot append to" in check.message
        [outcome] = await destination.send([event_from_dict({"type": "page", "userId": "u"})])
        assert isinstance(outcome, Retry) and "blocker" in outcome.reason

    asyncio.run(deliver())
