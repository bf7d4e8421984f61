"""The daemon's log lines mask every secret of the running config: in the message, in
structured fields and in a traceback whose exception text quotes one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from headwater.daemon import setup_logging
from headwater.daemon._logging import set_log_secrets

TOKEN = "Bearer tok-5f2a9c1e77"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    yield io.StringIO()
    set_log_secrets(())
    setup_logging(io.StringIO())


def log_all(out: io.StringIO, *, json_lines: bool) -> str:
    setup_logging(out, json_lines=json_lines)
    log = logging.getLogger("headwater.test")
    log.info("sent with %s", TOKEN, extra={"fields": {"header": TOKEN, "count": 3}})
    try:
        raise ValueError(f"the server refused {TOKEN!r}")
    except ValueError:
        log.exception("delivery task failed")
    return out.getvalue()


@pytest.mark.parametrize("json_lines", [True, False])
def test_registered_secrets_are_masked_everywhere_in_a_line(
    lines: io.StringIO, json_lines: bool
) -> None:
    set_log_secrets([TOKEN, "ab"])  # too short to mask in free text: left alone
    text = log_all(lines, json_lines=json_lines)
    assert "tok-5f2a9c1e77" not in text
    assert text.count("***") == 3  # the message, the field, the exception's text
    if json_lines:
        first, second = (json.loads(line) for line in text.splitlines()[:2])
        assert first["msg"] == "sent with ***" and first["header"] == "***"
        assert first["count"] == 3
        assert "ValueError: the server refused '***'" in second["exception"]


def test_a_reload_replaces_the_secrets(lines: io.StringIO) -> None:
    set_log_secrets(["old-secret-value"])
    set_log_secrets([TOKEN])
    setup_logging(lines, json_lines=True)
    logging.getLogger("headwater.test").info("old-secret-value %s", TOKEN)
    assert json.loads(lines.getvalue())["msg"] == "old-secret-value ***"
