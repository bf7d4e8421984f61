"""`--check`: ask each connector instance whether it can reach its service.

Only instances whose own config is valid and that are enabled are checked (the others show
`skipped`); all checks run concurrently, each bounded by the timeout, and each instance is
closed afterwards. A check's message and any exception text go through the redactor like
every other message, since a service's error may quote the credential it refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import msgspec

from ._codes import RESIDENCY_CODES
from ._paths import format_path
from ._run import Instance, Run

_IGNORED = RESIDENCY_CODES | {"HW055"}


class CheckContext(msgspec.Struct, frozen=True):
    """The ConnectorContext a connector gets for its check."""

    instance_id: str
    region: str
    endpoint: str | None
    data_dir: Path

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"headwater.validate.{self.instance_id}")


async def run_checks(run: Run, *, timeout: float, data_dir: Path) -> None:
    targets = []
    for inst in run.instances:
        blocking = run.problems.codes_at(inst.path) - _IGNORED
        if inst.loaded is None or not inst.enabled or blocking:
            inst.check = "skipped"
        else:
            targets.append(inst)
    await asyncio.gather(*(_check_one(run, inst, timeout, data_dir) for inst in targets))


async def _check_one(run: Run, inst: Instance, timeout: float, data_dir: Path) -> None:
    assert inst.loaded is not None
    where = format_path(inst.path)
    endpoint = inst.resolved.get("endpoint")
    region = inst.effective.region if inst.effective and inst.effective.region else run.region
    context = CheckContext(
        instance_id=inst.id,
        region=region or "",
        endpoint=endpoint if isinstance(endpoint, str) else None,
        data_dir=data_dir,
    )
    try:
        connector = inst.loaded.cls(inst.options(), context)
    except Exception as exc:
        inst.check = "failed"
        run.problems.add(
            "HW070", inst.path, f"`{where}` could not be set up: {type(exc).__name__}: {exc}"
        )
        return
    try:
        result = await asyncio.wait_for(connector.check(), timeout)
    except TimeoutError:
        inst.check = "timeout"
        run.problems.add(
            "HW071",
            inst.path,
            f"`{where}`: the connectivity check of `{inst.connector}` took longer than "
            f"{timeout:g}s; is the service reachable from here? (`--check-timeout` to wait more)",
        )
        return
    except Exception as exc:
        inst.check = "failed"
        run.problems.add(
            "HW070",
            inst.path,
            f"`{where}`: the connectivity check of `{inst.connector}` raised "
            f"{type(exc).__name__}: {exc}",
        )
        return
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connector.close(), timeout)
    if result.ok:
        inst.check = "ok"
        return
    inst.check = "failed"
    run.problems.add(
        "HW070",
        inst.path,
        f"`{where}`: the connectivity check of `{inst.connector}` failed: "
        f"{result.message or 'no reason given'}",
    )
