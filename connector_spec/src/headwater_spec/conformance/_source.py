"""The source suite: valid events out, and a restart resumes exactly where it stopped.

A pull source (one that implements ``run``) is run against an in-memory context; the
author's ``produce(count)`` makes new records appear upstream. After a graceful restart
and after a crash right behind a store, the source must emit every record exactly once:
no gaps, no duplicates. That is what `ctx.emit_and_checkpoint` is for. A push source (one
with ``routes``) is driven through its handlers with the author's ``push_requests``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections import Counter
from typing import Any, ClassVar

import pytest

from .._connector import Connector, Source
from .._events import EVENT_CLASSES, EventError, decode_event, encode_event
from .._push import HttpRequest, HttpResponse
from ._base import ConnectorConformance, fail, report
from ._context import MemoryContext, SimulatedCrash
from ._leaks import leaks, log_texts

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class SourceConformance(ConnectorConformance):
    """Subclass in your tests, set ``connector``, and implement ``produce`` (pull sources)
    or ``push_requests`` (push sources).

    ``settle`` is how long the suite keeps listening after the expected events arrived, to
    catch extra ones (duplicates).
    """

    AUTHOR_METHODS = ("config", "produce", "push_requests")

    connector: ClassVar[type[Connector]]
    settle: ClassVar[float] = 0.5

    async def produce(self, count: int) -> None:
        """Make ``count`` new records appear upstream, each to become one event."""
        fail(
            self._connector(),
            f"{type(self).__name__} must implement `async def produce(self, count)`: make "
            "`count` new records appear in the service the source reads (the suite's server "
            "at self.server can play it)",
        )

    def push_requests(self, count: int) -> list[HttpRequest]:
        """For a push source: HTTP requests that together carry ``count`` events."""
        fail(
            self._connector(),
            f"{type(self).__name__} must implement `push_requests(self, count)`: return "
            "HttpRequests for your routes that carry `count` events",
        )

    # ---- running --------------------------------------------------------------------

    def is_pull(self) -> bool:
        cls = self._connector()
        return issubclass(cls, Source) and cls.run is not Source.run

    async def run_until(self, context: MemoryContext, total: int, *, crash: bool = False) -> None:
        """Run a fresh instance until ``context`` holds ``total`` events, then stop it.

        With ``crash``, the run ends at the context's simulated crash instead.
        """
        cls = self._connector()
        instance = self.instantiate(self.config(), context)
        task = asyncio.create_task(instance.run(context))
        deadline = time.monotonic() + self.timeout * 0.8
        while len(context.events) < total and not task.done():
            if time.monotonic() > deadline:
                task.cancel()
                fail(
                    cls,
                    f"after {self.timeout * 0.8:g} s of run(), the source had emitted "
                    f"{len(context.events)} of the {total} events for the records produce() "
                    "made; run() must poll the service and emit what it finds (is it pointed "
                    "at the suite's server, `context.endpoint`?)",
                )
            await asyncio.sleep(0.01)
        if not task.done():
            await asyncio.sleep(self.settle)
        if task.done():
            error = task.exception()
            if isinstance(error, SimulatedCrash) and crash:
                await instance.close()
                return
            if error is not None:
                fail(
                    cls,
                    f"run() raised {type(error).__name__}: {self.redact(str(error), self.config())}"
                    f" after emitting {len(context.events)} of {total} events; handle the "
                    "service's errors inside run (log them and retry after a pause)",
                )
            if len(context.events) < total:
                fail(
                    cls,
                    f"run() returned after emitting {len(context.events)} of {total} events; "
                    "a pull source keeps polling until it is cancelled",
                )
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            fail(
                cls,
                "run() did not stop within 5 s of being cancelled; let asyncio.CancelledError "
                "propagate (do not catch it, or re-raise it)",
            )
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            fail(
                cls,
                f"run() raised {type(error).__name__} when cancelled; let CancelledError "
                "propagate and clean up in `finally`",
            )
        await instance.close()

    def event_problems(self, context: MemoryContext) -> list[str]:
        spec = self.spec()
        problems = list(context.invalid)
        ids: Counter[str] = Counter()
        for n, event in enumerate(context.events):
            where = f"event #{n}"
            if not isinstance(event, tuple(EVENT_CLASSES.values())):
                problems.append(
                    f"{where} is a {type(event).__name__}, not an event; emit Track, Identify, "
                    "Page, Screen, Group or Alias (event_from_dict builds them from JSON data)"
                )
                continue
            if event.event_type not in spec.event_types:
                problems.append(
                    f"{where} is a `{event.event_type}` event but spec.json's `event_types` "
                    f"lists only {spec.event_types}; add it there or do not emit it"
                )
            try:
                decode_event(encode_event(event))
            except EventError as exc:
                problems.append(
                    f"{where} (`{event.event_type}`) is not valid: {exc}; build events with "
                    "event_from_dict so they are checked"
                )
            if not event.messageId:
                problems.append(
                    f"{where} (`{event.event_type}`) has no messageId; derive one from the "
                    "record's identity (e.g. f'{table}:{primary_key}:{version}') so a record "
                    "read twice is recognised"
                )
            else:
                ids[event.messageId] += 1
        repeated = [mid for mid, n in ids.items() if n > 1]
        if repeated:
            problems.append(
                f"{len(repeated)} messageIds were emitted more than once "
                f"(e.g. {repeated[0]!r}); each record is emitted once, with its own messageId"
            )
        return problems

    def exactly_once(self, context: MemoryContext, produced: int, after: str) -> list[str]:
        ids = Counter(ev.messageId for ev in context.events)
        duplicates = sum(n - 1 for n in ids.values() if n > 1)
        emitted = len(context.events)
        problems = []
        if duplicates or emitted > produced:
            problems.append(
                f"after {after}, the source emitted {emitted} events for {produced} records "
                f"({max(duplicates, emitted - produced)} again); store the events and the "
                "new position in one step, `await ctx.emit_and_checkpoint(events, position)`, "
                "and start from `await ctx.load_checkpoint()`"
            )
        elif emitted < produced:
            problems.append(
                f"after {after}, the source emitted {emitted} events for {produced} records: "
                f"{produced - emitted} were skipped; resume from the last checkpoint, and "
                "move it only past records whose events were emitted"
            )
        return problems

    # ---- the checks -------------------------------------------------------------------

    def test_emits_valid_events(self) -> None:
        context = self.make_context()
        if self.is_pull():

            async def scenario() -> None:
                await self.produce(3)
                await self.run_until(context, 3)

            self.run(scenario(), doing="produce(3) and run() until 3 events")
            produced = 3
        else:
            produced = self.push(context, 3)
        problems = self.event_problems(context)
        if len(context.events) != produced:
            problems.append(
                f"the source emitted {len(context.events)} events for {produced} records; "
                "emit exactly one event per record"
            )
        report(self._connector(), problems)

    def test_resumes_after_restart_without_gaps_or_duplicates(self) -> None:
        if not self.is_pull():
            pytest.skip("push source: no checkpoint to resume from (the client retries)")
        context = self.make_context()

        async def scenario() -> None:
            await self.produce(3)
            await self.run_until(context, 3)
            await self.produce(2)
            await self.run_until(context, 5)

        self.run(scenario(), doing="two runs of the source")
        problems = self.exactly_once(context, 5, "a restart")
        if context.checkpoints_saved == 0:
            problems.append(
                "the source never saved a checkpoint; after a restart it cannot know where it "
                "was: call `ctx.emit_and_checkpoint(events, position)`"
            )
        report(self._connector(), problems)

    def test_resumes_after_crash_without_gaps_or_duplicates(self) -> None:
        """The process dies right after the first store; the next run picks up exactly."""
        if not self.is_pull():
            pytest.skip("push source: no checkpoint to resume from (the client retries)")
        context = self.make_context()
        context.crash_after_stores = 1

        async def scenario() -> None:
            await self.produce(4)
            await self.run_until(context, 4, crash=True)
            await self.run_until(context, 4)

        self.run(scenario(), doing="a run that crashes and the run after it")
        report(self._connector(), self.exactly_once(context, 4, "a crash right after a store"))

    def test_push_routes_are_well_formed(self) -> None:
        async def routes() -> list[Any]:
            instance = self.instantiate(self.config(), self.make_context())
            try:
                return list(instance.routes())
            finally:
                await instance.close()

        found = self.run(routes(), doing="routes()")
        if not found:
            pytest.skip("pull source: no routes")
        problems = []
        for route in found:
            if not (isinstance(route, tuple) and len(route) == 3):
                problems.append(f"route {route!r} is not a (method, path, handler) triple")
                continue
            method, path, handler = route
            if method not in HTTP_METHODS:
                problems.append(f"route {route!r}: method must be one of {sorted(HTTP_METHODS)}")
            if not isinstance(path, str) or not path.startswith("/"):
                problems.append(f"route {route!r}: the path must start with `/`")
            if not inspect.iscoroutinefunction(handler):
                problems.append(
                    f"route {method} {path}: the handler must be `async def "
                    "handler(request: HttpRequest) -> HttpResponse`"
                )
        report(self._connector(), problems)

    def test_secrets_not_in_logs_or_errors(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        config = self.config()
        secrets = self.secrets(config)
        context = self.make_context()
        texts: list[tuple[str, str]] = []
        if self.is_pull():

            async def scenario() -> None:
                await self.produce(2)
                await self.run_until(context, 2)
                instance = self.instantiate(config, context)
                try:
                    result = await instance.check()
                    texts.append(("check()'s message", result.message))
                except Exception as exc:
                    texts.append(("the exception check() raised", str(exc)))
                finally:
                    await instance.close()

            self.run(scenario(), doing="run() and check()")
        else:
            self.push(context, 2)
        texts.extend(("a rejection's reason", r.reason) for r in context.rejected)
        texts.extend(log_texts(caplog.records))
        report(self._connector(), leaks(secrets, texts))

    # ---- push sources -----------------------------------------------------------------

    def push(self, context: MemoryContext, count: int) -> int:
        """Send ``push_requests(count)`` through the source's handlers; return ``count``."""
        cls = self._connector()
        requests = self.push_requests(count)

        async def scenario() -> list[tuple[HttpRequest, Any]]:
            instance = self.instantiate(self.config(), context)
            answers = []
            try:
                table = [_compile(route) for route in instance.routes()]
                for request in requests:
                    handler, params = _match(table, request)
                    if handler is None:
                        fail(
                            cls,
                            f"no route of the source serves {request.method} {request.path}; "
                            "fix push_requests() or routes()",
                        )
                    request.params = params
                    answers.append((request, await handler(request)))
            finally:
                await instance.close()
            return answers

        for request, answer in self.run(scenario(), doing="the push handlers"):
            if not isinstance(answer, HttpResponse) or not 200 <= answer.status < 300:
                if isinstance(answer, HttpResponse):
                    body = self.redact(answer.body.decode(errors="replace"), self.config())
                    shown = f"{answer.status} {body}"
                else:
                    shown = repr(answer)
                fail(
                    cls,
                    f"{request.method} {request.path} answered {shown}; the requests from "
                    "push_requests() are valid and must be accepted with a 2xx HttpResponse",
                )
        return count


_Compiled = tuple[str, re.Pattern[str], Any]


def _compile(route: Any) -> _Compiled:
    method, path, handler = route
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return method, re.compile(f"^{pattern}$"), handler


def _match(table: list[_Compiled], request: HttpRequest) -> tuple[Any, dict[str, str]]:
    for method, pattern, handler in table:
        found = pattern.match(request.path)
        if method == request.method and found:
            return handler, found.groupdict()
    return None, {}
