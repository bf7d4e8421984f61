"""The published Node SDKs (@segment/analytics-node, @customerio/cdp-analytics-node),
unmodified, driven by tests/node/send.mjs against a real daemon: every event they report as
sent is in the log exactly once, with its fields intact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
KEY = "node-sdk-key"
CONFIG = f"""
[sources.node]
connector = "tracking-api"
write_keys = ["{KEY}"]
"""
COUNT = 60
REQUIRE = os.environ.get("HEADWATER_REQUIRE_SERVICES") == "1"


def need_node_sdks() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").exists():
        problem = "the Node SDKs are not installed; run `npm ci` in tests/node"
    if problem:
        if REQUIRE:
            pytest.fail(f"{problem} and HEADWATER_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(problem)
    assert node is not None
    return node


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sdk", ["segment", "customerio"])
def test_node_sdk_events_are_stored_exactly_once(headwater_daemon: Any, sdk: str) -> None:
    node = need_node_sdks()
    daemon = headwater_daemon(CONFIG)
    done = subprocess.run(
        [node, "send.mjs", sdk, daemon.url, KEY, str(COUNT)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == [] and report["errors"] == [], report
    assert len(report["sent"]) == COUNT

    stored = daemon.events_by_message_id()
    for sent in report["sent"]:
        copies = stored.get(sent["messageId"], [])
        assert len(copies) == 1, f"{sent['messageId']} stored {len(copies)} times"
        event = copies[0]
        assert event["type"] == sent["type"]
        n = sent["n"]
        assert event["userId"] == f"node-user-{n % 7}"
        if sent["type"] in ("track", "page", "screen"):
            assert event["properties"] == {
                "n": n,
                "sdk": sdk,
                "nested": {"list": [1, "two", 3.5], "flag": n % 2 == 0},
            }
        if sent["type"] == "group":
            assert event["groupId"] == f"org-{n}"
        if sent["type"] == "alias":
            assert event["previousId"] == f"anon-{n}"
        assert event["context"]["library"]["name"]
    assert len(daemon.records()) == COUNT
