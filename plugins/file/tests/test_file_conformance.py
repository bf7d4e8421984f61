"""The `file` destination against the Headwater conformance suite."""

from __future__ import annotations

from typing import Any

from headwater_file import FileDestination
from headwater_spec.conformance import DestinationConformance


class TestFileConformance(DestinationConformance):
    connector = FileDestination
    talks_http = False

    def config(self) -> dict[str, Any]:
        return {"path": str(self.tmp_path / "events.jsonl")}

    def broken_config(self) -> dict[str, Any]:
        blocker = self.tmp_path / "not-a-directory"
        blocker.write_text("")
        return {"path": str(blocker / "events.jsonl")}
