"""Regions: which exist, where each connector instance's data goes, and endpoint hosts.

The rule for an `endpoint` override (documented in docs/validate.md): its host belongs to
region R when it equals the host of R's endpoint in the connector's spec, or, failing that,
when one of its labels before the top-level domain has R as a dash- or dot-separated token
(`api-eu.example.com`, `eu.api.example.com`, `eu-west-1.example.com`), R being `us`, `eu`
or a concrete region the connector declares. Several such tokens, or none, leave the host's
region unknown; the top-level domain (`.uk`, `.in`) never counts, it says nothing about
where a server runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from headwater_spec import ConnectorSpec, Source, meta_schema

from ..plugins import LoadedConnector

ANY = "any"
GLOBAL = "global"
ALWAYS_KNOWN = ("us", "eu")


def all_regions() -> list[str]:
    """Every region name the connector spec meta-schema allows, in its order."""
    names: list[str] = meta_schema()["properties"]["regions"]["propertyNames"]["enum"]
    return list(names)


def concrete_regions() -> list[str]:
    """Regions that are places (not `global` or `any`)."""
    return [r for r in all_regions() if r not in (ANY, GLOBAL)]


def workspace_regions(specs: Iterable[ConnectorSpec]) -> list[str]:
    """`us`, `eu` and every concrete region an installed connector declares."""
    declared = set(ALWAYS_KNOWN)
    for spec in specs:
        declared.update(spec.regions)
    return [r for r in concrete_regions() if r in declared]


def instance_regions(spec: ConnectorSpec) -> list[str]:
    """Values an instance's `region` may take: the declared ones, or any place for `any`."""
    declared = [r for r in all_regions() if r in spec.regions and r != ANY]
    if ANY not in spec.regions:
        return declared
    return [r for r in all_regions() if r in declared or r in concrete_regions()]


class Effective(msgspec.Struct, frozen=True):
    region: str | None
    origin: Literal["config", "default", "daemon", "unknown"]


def effective_region(loaded: LoadedConnector, configured: str | None, workspace: str) -> Effective:
    """Where an instance's data is: its `region`, else the spec's default.

    A push source (one serving HTTP routes) receives events on the daemon's own server, so
    without a `region` key its data is in the workspace region. A connector whose regions
    say `any` (a database the operator hosts) is wherever its `region` key says, and
    unknown without one.
    """
    if configured:
        return Effective(configured, "config")
    if _is_push_source(loaded.cls):
        return Effective(workspace, "daemon")
    default = loaded.spec.effective_default_region()
    if default == ANY:
        return Effective(None, "unknown")
    return Effective(default, "default")


def _is_push_source(cls: type) -> bool:
    return issubclass(cls, Source) and cls.routes is not Source.routes


def _host(url: str) -> str | None:
    parts = urlsplit(url if "://" in url else f"//{url}")
    return parts.hostname.lower() if parts.hostname else None


def endpoint_region(spec: ConnectorSpec, endpoint: str) -> str | None:
    """The region an endpoint's host belongs to, by the rule in this module's docstring."""
    host = _host(endpoint)
    if host is None:
        return None
    exact = [
        region
        for region, entry in spec.regions.items()
        if entry.endpoint and _host(entry.endpoint) == host
    ]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None
    candidates = set(ALWAYS_KNOWN) | (set(spec.regions) & set(concrete_regions()))
    labels = host.split(".")[:-1]
    tokens = {token for label in labels for token in re.split(r"-", label)}
    found = tokens & candidates
    return found.pop() if len(found) == 1 else None
