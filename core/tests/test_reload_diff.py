"""The pieces a reload is made of: what changed between two configs, and taking a
source's routes away again from the route table."""

from __future__ import annotations

import msgspec

from headwater.config import Config, ConnectorInstance
from headwater.daemon import Metrics, RouteTable
from headwater.lifecycle import diff_configs
from headwater.lifecycle._diff import with_running_settings
from headwater_spec import HttpRequest, HttpResponse


def instance(name: str, kind: str = "destination", **options: object) -> ConnectorInstance:
    return msgspec.convert(
        {"id": name, "kind": kind, "connector": "webhook", "options": options}, ConnectorInstance
    )


def cfg(**destinations: ConnectorInstance) -> Config:
    return Config(destinations=dict(destinations), path="headwater.toml")


def test_instances_added_changed_and_removed() -> None:
    old = cfg(a=instance("a", url="http://a"), b=instance("b", url="http://b"))
    new = cfg(b=instance("b", url="http://b2"), c=instance("c", url="http://c"))
    changes = diff_configs(old, new)
    assert (changes.destinations.added, changes.destinations.changed) == (["c"], ["b"])
    assert changes.destinations.removed == ["a"]
    assert changes.sources.empty and not changes.restart_needed


def test_a_framework_key_change_is_a_change() -> None:
    old = cfg(a=instance("a", url="http://a"))
    new = cfg(a=instance("a", url="http://a"))
    new.destinations["a"].enabled = False
    assert diff_configs(old, new).destinations.changed == ["a"]
    assert diff_configs(old, cfg(a=instance("a", url="http://a"))).empty


def test_restart_only_settings_are_compared_with_the_file_as_started() -> None:
    started = cfg()
    running = cfg()
    running.server.listen = "127.0.0.1:0"  # a --listen override, not a change of the file
    same_file = cfg()
    changes = diff_configs(running, same_file, started_from=started)
    assert changes.restart_needed == []
    moved = cfg()
    moved.server.listen = "0.0.0.0:9000"
    moved.log.max_size = 1 << 30
    assert diff_configs(running, moved, started_from=started).restart_needed == [
        "[server] listen",
        "[log]",
    ]
    kept = with_running_settings(moved, running)
    assert kept.server.listen == "127.0.0.1:0" and kept.log == running.log


def test_token_and_retention_apply_live() -> None:
    new = cfg()
    new.server.admin_token = "new-token"
    new.workspace.retention = "30d"
    assert diff_configs(cfg(), new).applied_live == [
        "[server] admin_token",
        "[workspace] retention",
    ]


def answer(tag: str):  # type: ignore[no-untyped-def]
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json({"tag": tag}, decline=tag == "web")

    return handler


async def test_a_sources_routes_go_and_the_others_stay() -> None:
    table = RouteTable(Metrics())
    table.add_routes([("POST", "/v1/batch", answer("web"))], owner="source:web")
    table.add_routes([("POST", "/v1/batch", answer("app"))], owner="source:app")
    table.add_routes([("POST", "/hooks/{name}", answer("web"))], owner="source:web")
    request = HttpRequest(method="POST", path="/v1/batch", headers={})
    assert msgspec.json.decode((await table.dispatch(request)).body) == {"tag": "app"}
    assert table.remove_owner("source:web") == 2
    assert msgspec.json.decode((await table.dispatch(request)).body) == {"tag": "app"}
    gone = HttpRequest(method="POST", path="/hooks/x", headers={})
    assert (await table.dispatch(gone)).status == 404
    assert table.remove_owner("source:app") == 1
    assert (await table.dispatch(request)).status == 404
