"""A loopback stand-in for a SaaS API that enforces the API's documented contract.

Where the real service cannot be reached from the test machines, a connector's own tests
talk to a server that checks what the API's documentation requires of a client (paths,
methods, auth, body shape, limits) and answers the way the documentation says the service
answers. A subclass holds only those rules, in ``answer``; this class brings the plumbing
every such server needs: the real HTTP server on loopback (``ServiceServer``'s), scripted
faults for the next requests (an error status, a hang, a dropped connection), and a record
of *violations*, requests the connector should never have built, which a test fixture
turns into a failure.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import Any

from ._server import LoopbackServer, RecordedRequest, Reply


class ContractServer(LoopbackServer):
    """Plays one API on 127.0.0.1: subclass it and implement ``answer``.

    Inherits ``url``, ``start``/``stop`` (and ``with``), ``requests``/``received()`` and
    ``clear()`` from the suite's server. A request is answered by the first scripted fault
    that matches its path, if any, else by ``answer``. ``violation`` records a broken rule
    and answers 400; call ``assert_no_violations`` when the test is done (a fixture's
    teardown) so a connector that breaks the contract fails even when it copes with the 400.
    """

    service = "the service"
    """How messages name the API's owner (``"Amplitude"``: "broke Amplitude's contract")."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self._script: deque[tuple[str | None, Reply]] = deque()

    def answer(self, request: RecordedRequest) -> Reply:
        """The API's answer to ``request``, by its documented rules."""
        raise NotImplementedError(f"{type(self).__name__} must implement answer(request)")

    def violation(self, message: str) -> Reply:
        """Record a request the connector should never build; answer 400."""
        with self._lock:
            self.violations.append(message)
        return Reply.json({"error": f"contract violation: {message}"}, 400)

    def assert_no_violations(self) -> None:
        """Raise AssertionError listing every violation recorded."""
        assert not self.violations, (
            f"requests broke {self.service}'s documented contract: {self.violations}"
        )

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to ``path``, if given) with ``status``.

        ``body`` is sent as JSON, or as text/plain when it is bytes; None sends no body.
        """
        if isinstance(body, bytes):
            content, kind = body, "text/plain"
        else:
            content = json.dumps(body).encode() if body is not None else b""
            kind = "application/json"
        reply = Reply(status, content, (("Content-Type", kind), *(headers or {}).items()))
        for _ in range(times):
            self.script(reply, path=path)

    def hang_next(self, *, path: str | None = None) -> None:
        """Accept the next request (to ``path``) and never answer it, until ``stop``."""
        self.script(Reply(hang=True), path=path)

    def drop_next(self, *, path: str | None = None) -> None:
        """Close the connection of the next request (to ``path``) without an answer."""
        self.script(Reply(drop=True), path=path)

    def script(self, reply: Reply, *, path: str | None = None) -> None:
        """Answer the next request (to ``path``, if given) with ``reply``, bypassing ``answer``."""
        with self._lock:
            self._script.append((path, reply))

    def paths(self) -> list[str]:
        """The path of every request received, in order."""
        return [r.path for r in self.received()]

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            for entry in self._script:
                if entry[0] is None or entry[0] == request.path:
                    self._script.remove(entry)
                    return entry[1]
        return self.answer(request)
