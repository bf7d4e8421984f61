"""A destination whose constructor fails with a secret in its exception text: the router's
status (what the admin API and `headwater destinations` show) and its log line mask it,
nested secrets (a header value) included."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from headwater.config import load_config
from headwater.log import LmdbLog
from headwater.plugins import load_plugins
from headwater.router import Router
from headwater_spec import ConnectorSpec, Destination, hookimpl

TOKEN = "nested-secret-token-6620"
pytestmark = pytest.mark.timeout(60)


class Fussy(Destination):
    spec = ConnectorSpec.from_dict(
        {
            "name": "fussy",
            "version": "0.0.1",
            "direction": "out",
            "regions": {"any": {}},
            "config": {
                "type": "object",
                "properties": {
                    "headers": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "secret": True},
                    }
                },
            },
        }
    )

    def __init__(self, config: Any, context: Any) -> None:
        super().__init__(config, context)
        raise ValueError(f"cannot use headers {self.config['headers']}")


class Plugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(Fussy)


async def test_a_start_error_that_quotes_a_header_value_is_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "headwater.toml"
    path.write_text(
        '[workspace]\ndata_dir = "data"\n\n[destinations.picky]\nconnector = "fussy"\n'
        f'headers = {{ Authorization = "Bearer {TOKEN}" }}\n'
    )
    log = LmdbLog(tmp_path / "data", sync=False)
    registry = load_plugins(only=set(), extra=[("fussy", Plugin())])
    router = Router(log, load_config(path), registry)
    caplog.set_level(logging.DEBUG)
    await router.start()
    try:
        [status] = router.status()
    finally:
        await router.stop()
        log.close()
    assert status.state == "failed"
    assert status.error == "cannot use headers {'Authorization': '***'}"
    assert TOKEN not in caplog.text and "not started" in caplog.text
