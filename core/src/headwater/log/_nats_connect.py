"""Connecting to NATS from the `[log]` options: servers, credentials file, TLS.

The connection reconnects forever: a daemon outlives any one NATS server, and the
client walks the server list (plus the servers the cluster announces) until one answers.
Server URLs may carry ``user:password@``; they are redacted wherever they are logged.
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ._errors import LogError

if TYPE_CHECKING:
    from nats.aio.client import Client

logger = logging.getLogger("headwater.log.jetstream")

_USERINFO = re.compile(r"(?<=://)[^@/]*@")


class NatsOptions(msgspec.Struct, frozen=True, kw_only=True):
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    credentials: str | None = None
    """A NATS ``.creds`` file (JWT and NKey seed); needs the ``nkeys`` package."""
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str = "headwater"


def redact(url: str) -> str:
    """A server URL without its user and password."""
    return _USERINFO.sub("***@", url)


def servers_text(servers: tuple[str, ...] | list[str]) -> str:
    return ", ".join(redact(s) for s in servers)


def tls_context(options: NatsOptions) -> ssl.SSLContext | None:
    wants = (
        options.tls
        or options.tls_ca is not None
        or options.tls_cert is not None
        or any(s.startswith("tls://") for s in options.servers)
    )
    if not wants:
        return None
    for field, path in (
        ("tls_ca", options.tls_ca),
        ("tls_cert", options.tls_cert),
        ("tls_key", options.tls_key),
    ):
        if path is not None and not Path(path).is_file():
            raise LogError(f"[log] {field} = {path!r}: no such file; give the path of a PEM file")
    context = ssl.create_default_context(cafile=options.tls_ca)
    if options.tls_cert is not None:
        context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


async def connect(options: NatsOptions) -> Client:
    """A connected client, or LogError naming the servers and what to check."""
    import nats
    from nats.errors import NoServersError

    if options.credentials is not None and not Path(options.credentials).is_file():
        raise LogError(
            f"[log] credentials = {options.credentials!r}: no such file; give the path of a "
            "NATS .creds file"
        )

    async def on_error(exc: Exception) -> None:
        logger.warning("nats connection error", extra={"fields": {"error": type(exc).__name__}})

    async def on_disconnect() -> None:
        if not (nc.is_closed or nc.is_draining):
            logger.warning("nats disconnected; reconnecting")

    async def on_reconnect() -> None:
        url = nc.connected_url
        logger.info(
            "nats reconnected",
            extra={"fields": {"server": redact(url.geturl()) if url else "unknown"}},
        )

    try:
        nc = await nats.connect(
            servers=list(options.servers),
            name=options.name,
            tls=tls_context(options),
            user_credentials=options.credentials,
            allow_reconnect=True,
            max_reconnect_attempts=3,
            reconnect_time_wait=0.25,
            connect_timeout=3,
            ping_interval=5,
            max_outstanding_pings=3,
            pending_size=64 * 1024 * 1024,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
    except (NoServersError, OSError, TimeoutError) as exc:
        raise LogError(
            f"cannot reach NATS at {servers_text(options.servers)} ({type(exc).__name__}); "
            "check [log] servers and that nats-server runs with JetStream (-js)"
        ) from None
    # Give up on the first connection after a few rounds of the list (a wrong address
    # should fail `serve` quickly), but once connected, reconnect for as long as it takes.
    nc.options["max_reconnect_attempts"] = -1
    return nc
