"""SIGTERM/SIGINT: the first asks for a graceful stop, a second one for a fast one."""

from __future__ import annotations

import asyncio
import logging
import signal


class StopSignals:
    """Installs the handlers on the running loop; ``stop`` is set by the first signal,
    ``hurry`` by the second (the drain grace period is then cut short)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()
        self.received: str | None = None
        self._logger = logging.getLogger("headwater.daemon")

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.stop.is_set():
            self._logger.warning(
                "second signal; stopping without waiting", extra={"fields": {"signal": sig.name}}
            )
            self.hurry.set()
            return
        self.received = sig.name
        self._logger.info("stopping", extra={"fields": {"signal": sig.name}})
        self.stop.set()
