"""Fixtures of the validation tests: the test connectors, as a registry or installed.

`registry` holds the shipped `file` connector plus the throwaway ones of
hwtest_validate_connectors. `installed_test_plugins` makes the same set what the real CLI
finds: it puts a distribution (a .dist-info with an entry point) on sys.path and limits
loading to it and headwater-file with HEADWATER_PLUGINS, as an operator would.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.plugins import ConnectorRegistry, load_plugins

HERE = Path(__file__).parent
DATA = HERE / "data"
MODULE = "hwtest_validate_connectors"
DIST = "hwtest-validate-connectors"
PLUGINS = f"headwater-file,{DIST}"

ENV = {
    "SAAS_KEY": "sk_live_9f8e7d6c5b4a3210",
    "WRITE_KEY": "wk_from_env_4711",
    "PULLER_TOKEN": "pull_token_c0ffee",
    "ADMIN_TOKEN": "admin_token_b4dc0de",
}
"""The environment every table config is validated in; MISSING_KEY stays unset."""

SECRETS = (
    *ENV.values(),
    "sk_literal_value_0042",
    "not-a-key-but-secret-1234",
    "literal-write-key-77",
    "literal-admin-secret",
)
"""Every secret value any table config holds or resolves to: none may appear in output."""


def _module() -> object:
    """The test connectors' module, imported once without touching sys.path."""
    if MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(MODULE, HERE / f"{MODULE}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[MODULE]


@pytest.fixture(scope="session")
def registry() -> ConnectorRegistry:
    reg = load_plugins(only={"headwater-file"}, extra=[(MODULE, _module())])
    assert not reg.failures, reg.failures
    return reg


@pytest.fixture
def installed_test_plugins(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    site = tmp_path_factory.mktemp("site")
    info = site / "hwtest_validate_connectors-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text(f"[headwater]\nhwtest = {MODULE}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("HEADWATER_PLUGINS", PLUGINS)
    yield site
