"""The destination suite: every event type, and each answer of the service mapped right.

The suite's local server plays the service and answers 2xx, 429 (with and without
Retry-After), 5xx, 4xx, never, or by dropping the connection; a refused port stands for a
service that is down. For each, ``send`` must return one outcome per event of the kind the
router needs (``Delivered``, ``Retry`` with the service's Retry-After, ``Rejected``) and must
never raise. Secrets must stay out of reprs, log records and outcome reasons throughout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import msgspec
import pytest

from .._connector import CheckResult, Connector
from .._events import Event
from .._outcomes import Delivered, Outcome, Rejected, Retry
from ._base import ConnectorConformance, fail, report
from ._context import MemoryContext
from ._leaks import leaks, log_texts
from ._samples import sample_events
from ._server import RecordedRequest, Reply, refused_url

_KIND_NAMES: dict[type, str] = {Delivered: "Delivered", Retry: "Retry", Rejected: "Rejected"}


class SendResult(msgspec.Struct):
    batch: list[Event]
    outcomes: list[Any] | None
    error: BaseException | None
    requests: list[RecordedRequest]
    seconds: float
    check: CheckResult | None = None
    check_error: BaseException | None = None


class DestinationConformance(ConnectorConformance):
    """Subclass in your tests, set ``connector``, and pytest runs every check.

    Hooks: ``config()`` (the instance config; default the first valid example),
    ``server_config(url)`` (the config pointing at the suite's server; default ``config()``,
    as the suite also sets ``context.endpoint`` to ``url``), ``ok_reply`` and
    ``error_reply`` (the service's documented bodies). Attributes: ``talks_http`` (False
    for destinations that are not HTTP services, like a file), ``sends_message_id``,
    ``default_retry_after`` (what you return for a 429 without Retry-After, when the
    service documents one).
    """

    AUTHOR_METHODS = ("config", "server_config", "ok_reply", "error_reply", "broken_config")

    connector: ClassVar[type[Connector]]
    talks_http: ClassVar[bool] = True
    sends_message_id: ClassVar[bool] = True
    default_retry_after: ClassVar[float | None] = None

    def server_config(self, url: str) -> dict[str, Any]:
        """The instance config that sends to ``url`` (the suite's server, or a refused
        port). Override when the address is one of your config keys."""
        return self.config()

    def ok_reply(self, request: RecordedRequest) -> Reply:
        """The service's answer when it accepts a request (override for its real body)."""
        return Reply(200, b'{"success": true}')

    def error_reply(self, status: int, request: RecordedRequest) -> Reply:
        """The service's answer with an error status (override for its real body)."""
        return Reply(status, b'{"error": "conformance suite says %d"}' % status)

    def broken_config(self) -> dict[str, Any] | None:
        """For a destination that is not HTTP: a config under which it cannot deliver (an
        unwritable path...). ``send`` must then return Retry for each event, not raise."""
        return None

    # ---- running a scenario -----------------------------------------------------------

    def send_batch(
        self,
        *,
        url: str | None = None,
        config: dict[str, Any] | None = None,
        batch: Sequence[Event] | None = None,
        call_check: bool = False,
    ) -> SendResult:
        """Create an instance, send one batch, close it; never raises from ``send``."""
        target = url if url is not None else self.server.url
        if config is None:
            config = self.server_config(target) if self.talks_http else self.config()
        events = list(batch) if batch is not None else self.every_event()
        self.server.clear()

        async def scenario() -> SendResult:
            context = MemoryContext(
                instance_id=f"conformance-{self.spec().name}",
                region=self.effective_region(),
                data_dir=self.tmp_path,
                endpoint=target,
            )
            instance = self.instantiate(config, context)
            started = time.monotonic()
            outcomes: Any = None
            error: BaseException | None = None
            check: CheckResult | None = None
            check_error: BaseException | None = None
            try:
                outcomes = await instance.send(events)
            except Exception as exc:
                error = exc
            seconds = time.monotonic() - started
            if call_check:
                try:
                    check = await instance.check()
                except Exception as exc:
                    check_error = exc
            await instance.close()
            return SendResult(
                events, outcomes, error, self.server.received(), seconds, check, check_error
            )

        return self.run(scenario(), doing="send()")

    def every_event(self) -> list[Event]:
        """One event per accepted type, as many as one ``send`` may get (``max_batch``)."""
        return self.all_event_types()[: self.spec().delivery.max_batch]

    def all_event_types(self) -> list[Event]:
        return sample_events(self.spec().event_types)

    def expect(self, result: SendResult, kind: type, answer: str) -> list[Outcome]:
        """Fail unless ``send`` returned one ``kind`` outcome per event."""
        cls = self._connector()
        config = self.server_config(self.server.url) if self.talks_http else self.config()
        if result.error is not None:
            text = self.redact(str(result.error), config).strip().splitlines()
            fail(
                cls,
                f"when the service {answer}, send() raised {type(result.error).__name__}"
                f"{': ' + text[0][:200] if text else ''}; send must never raise for service "
                "errors: catch them and return Retry(reason=...) or Rejected(reason=...) for "
                "each event",
            )
        outcomes = result.outcomes
        if not isinstance(outcomes, list) or len(outcomes) != len(result.batch):
            got = (
                f"{len(outcomes)} outcomes"
                if isinstance(outcomes, list)
                else f"{type(outcomes).__name__}"
            )
            fail(
                cls,
                f"send() returned {got} for a batch of {len(result.batch)} events; return a "
                "list with one Outcome per event, in the batch's order",
            )
        wrong: dict[str, list[str]] = {}
        for event, outcome in zip(result.batch, outcomes, strict=True):
            if not isinstance(outcome, kind):
                wrong.setdefault(repr(outcome), []).append(f"`{event.event_type}`")
        problems = []
        for shown, events in wrong.items():
            which = f"{len(events)} of {len(result.batch)} events ({', '.join(events)})"
            if not shown.startswith(("Delivered(", "Retry(", "Rejected(")):
                problems.append(
                    f"send() returned {shown} for {which}; each outcome must be Delivered(), "
                    "Retry(reason=...) or Rejected(reason=...)"
                )
            else:
                problems.append(
                    f"when the service {answer}, send() must return {_KIND_NAMES[kind]} for "
                    f"every event; it returned {self.redact(shown, config)} for {which}"
                )
        report(cls, problems)
        return list(outcomes)

    def require_http(self) -> None:
        if not self.talks_http:
            pytest.skip(f"{self._connector().__name__} does not talk HTTP (talks_http = False)")

    def require_request(self, result: SendResult) -> None:
        if not result.requests:
            fail(
                self._connector(),
                f"the suite's server ({self.server.url}) received no request; point the "
                "connector at it: take the service address from `context.endpoint` (the "
                "framework's `endpoint` override), or override server_config(url) in your "
                "conformance class to put `url` in the config",
            )

    def answer_with(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Make the server answer every request with ``status`` (and extra headers)."""

        def handler(request: RecordedRequest) -> Reply:
            base = self.ok_reply(request) if status < 300 else self.error_reply(status, request)
            return Reply(status, base.body, (*base.headers, *headers))

        self.server.handler = handler

    # ---- the checks -------------------------------------------------------------------

    def test_delivers_every_event_type(self) -> None:
        """One event of each type the spec accepts reaches the service and is Delivered."""
        self.answer_with(200)
        events, step = self.all_event_types(), self.spec().delivery.max_batch
        results = [self.send_batch(batch=events[i : i + step]) for i in range(0, len(events), step)]
        for result in results:
            self.expect(result, Delivered, "accepts every event (200)")
        if not self.talks_http:
            return
        for result in results:
            self.require_request(result)
        if self.sends_message_id:
            sent = b"".join(r.body for result in results for r in result.requests)
            missing = [
                f"`{ev.event_type}` ({ev.messageId})"
                for ev in events
                if ev.messageId and ev.messageId.encode() not in sent
            ]
            if missing:
                fail(
                    self._connector(),
                    f"the messageId of {', '.join(missing)} never reached the service; send "
                    "it (as the service's insert/dedup id) so retried events are not counted "
                    "twice, or set `sends_message_id = False` if the service has no such field",
                )

    @pytest.mark.parametrize("status", [202, 204])
    def test_other_2xx_is_delivered(self, status: int) -> None:
        self.require_http()
        self.answer_with(status)
        result = self.send_batch()
        self.require_request(result)
        self.expect(result, Delivered, f"answers {status}")

    def test_429_with_retry_after_is_retry_after(self) -> None:
        self.require_http()
        self.answer_with(429, [("Retry-After", "7")])
        result = self.send_batch()
        self.require_request(result)
        outcomes = self.expect(result, Retry, "answers 429 with `Retry-After: 7`")
        wrong = [o for o in outcomes if not isinstance(o, Retry) or o.retry_after != 7]
        if wrong:
            fail(
                self._connector(),
                f"the service answered 429 with `Retry-After: 7` but send() returned "
                f"{wrong[0]!r}; pass the header's seconds on: Retry(reason=..., retry_after=7)",
            )

    def test_429_without_retry_after_is_retry(self) -> None:
        self.require_http()
        self.answer_with(429)
        result = self.send_batch()
        self.require_request(result)
        outcomes = self.expect(result, Retry, "answers 429 without Retry-After")
        wrong = [
            o
            for o in outcomes
            if isinstance(o, Retry) and o.retry_after not in (None, self.default_retry_after)
        ]
        if wrong:
            fail(
                self._connector(),
                f"the service answered 429 without Retry-After but send() returned "
                f"{wrong[0]!r}; leave retry_after None so the router's backoff decides (or "
                "set `default_retry_after` on the conformance class to the delay the service "
                "documents)",
            )

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_5xx_is_retry(self, status: int) -> None:
        self.require_http()
        self.answer_with(status)
        result = self.send_batch()
        self.require_request(result)
        self.expect(result, Retry, f"answers {status}")

    @pytest.mark.parametrize("status", [400, 422])
    def test_4xx_is_rejected(self, status: int) -> None:
        self.require_http()
        self.answer_with(status)
        result = self.send_batch()
        self.require_request(result)
        outcomes = self.expect(result, Rejected, f"answers {status}")
        if any(isinstance(o, Rejected) and not o.reason.strip() for o in outcomes):
            fail(
                self._connector(),
                f"Rejected outcomes for a {status} have an empty reason; say what the "
                "service refused (the reason goes to the dead-letter table for operators)",
            )

    def test_timeout_is_retry(self) -> None:
        """A service that accepts the request and never answers: the client times out."""
        self.require_http()
        self.server.reply = Reply(hang=True)
        result = self.send_batch()
        self.expect(result, Retry, "never answers (a timeout)")

    def test_dropped_connection_is_retry(self) -> None:
        self.require_http()
        self.server.reply = Reply(drop=True)
        result = self.send_batch()
        self.expect(result, Retry, "closes the connection without answering")

    def test_connection_refused_is_retry(self) -> None:
        self.require_http()
        result = self.send_batch(url=refused_url())
        self.expect(result, Retry, "is down (connection refused)")

    def test_unreachable_is_retry(self) -> None:
        """Non-HTTP destinations: ``broken_config()`` makes delivery fail; that is a Retry."""
        if self.talks_http:
            pytest.skip("covered by test_connection_refused_is_retry")
        config = self.broken_config()
        if config is None:
            pytest.skip("no broken_config(): override it to return a config that cannot deliver")
        result = self.send_batch(config=config)
        self.expect(result, Retry, "cannot be reached (broken_config())")

    def test_check_reports_unreachable_service(self) -> None:
        """``check()`` returns ``ok=False`` (and does not raise) when the service is down."""
        self.require_http()
        if self._connector().check is Connector.check:
            pytest.skip("the connector does not implement check()")
        result = self.send_batch(url=refused_url(), call_check=True)
        if result.check_error is not None:
            fail(
                self._connector(),
                f"check() raised {type(result.check_error).__name__} when the service was "
                "down; return CheckResult(ok=False, message=...) instead",
            )
        if result.check is not None and result.check.ok:
            fail(
                self._connector(),
                "check() returned ok=True although the service was unreachable; it must "
                "really call the service",
            )

    def test_secrets_not_in_logs_or_errors(self, caplog: pytest.LogCaptureFixture) -> None:
        """Across success and every failure, no secret value in log records or reasons."""
        caplog.set_level(logging.DEBUG)
        texts: list[tuple[str, str]] = []
        scenarios: list[tuple[str, int | None, str | None]] = [("accepted", 200, None)]
        if self.talks_http:
            scenarios += [
                ("refused (400)", 400, None),
                ("failed (500)", 500, None),
                ("limited (429)", 429, None),
                ("down", None, refused_url()),
            ]
        config = self.server_config(self.server.url) if self.talks_http else self.config()
        secrets = self.secrets(config)
        for label, status, url in scenarios:
            if status is not None:
                self.answer_with(status)
            result = self.send_batch(url=url, call_check=True)
            if result.error is not None:
                texts.append((f"the exception send() raised ({label})", repr(result.error)))
                texts.append((f"the exception send() raised ({label})", str(result.error)))
            for outcome in result.outcomes or ():
                texts.append((f"an outcome's reason ({label})", repr(outcome)))
            if result.check is not None:
                texts.append((f"check()'s message ({label})", result.check.message))
            if result.check_error is not None:
                texts.append((f"the exception check() raised ({label})", str(result.check_error)))
        texts.extend(log_texts(caplog.records))
        report(self._connector(), leaks(secrets, texts))
