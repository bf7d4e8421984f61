"""Run a daemon until SIGTERM/SIGINT, and say how it went as an exit code."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

from ..config import Config, ConfigError
from ..log import LogError
from ._app import DEFAULT_GRACE, Daemon, DaemonError
from ._gc import tune_gc_for_serving
from ._signals import StopSignals

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def _banner(daemon: Daemon, out: TextIO) -> None:
    """For the embedded default config only: the development write key and a first event.
    A configured deployment's keys are secrets and are never printed."""
    if daemon.config.path is not None:
        return
    for instance_id, instance in daemon.config.sources.items():
        keys = instance.options.get("write_keys") if instance.connector == "tracking-api" else None
        if not keys:
            continue
        key = keys[0]
        print(
            f"headwater: development source {instance_id!r} on {daemon.url} "
            f"(write key: {key})\n"
            f"  send an event:  curl -u {key}: {daemon.url}/v1/track "
            "-H 'Content-Type: application/json' "
            '-d \'{"userId": "user-1", "event": "Signed Up"}\'',
            file=out,
            flush=True,
        )


async def serve(
    config: Config, *, grace: float = DEFAULT_GRACE, banner: TextIO | None = None
) -> int:
    """Start, run until a stop signal, stop gracefully; return the exit code."""
    logger = logging.getLogger("headwater.daemon")
    signals = StopSignals()
    signals.install()
    daemon = Daemon(config)
    try:
        try:
            await daemon.start()
        except ConfigError as exc:
            logger.error("bad config", extra={"fields": {"error": str(exc)}})
            return EXIT_CONFIG
        except (DaemonError, LogError) as exc:
            logger.error("cannot start", extra={"fields": {"error": str(exc)}})
            return EXIT_RUNTIME
        tune_gc_for_serving()
        _banner(daemon, banner or sys.stdout)
        await signals.stop.wait()
        stopping = asyncio.create_task(daemon.stop(grace))
        hurry = asyncio.create_task(signals.hurry.wait())
        done, _ = await asyncio.wait({stopping, hurry}, return_when=asyncio.FIRST_COMPLETED)
        if hurry in done:
            daemon.hurry()
        await stopping
        hurry.cancel()
        return EXIT_OK
    finally:
        signals.uninstall()


def run(config: Config, *, grace: float = DEFAULT_GRACE) -> int:
    return asyncio.run(serve(config, grace=grace))
