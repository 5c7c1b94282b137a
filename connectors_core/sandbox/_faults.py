"""Injected behaviours of the provider's endpoints, for tests: the next requests to
``token``, ``revoke`` or ``status`` fail with an HTTP error or a timeout, get a canned
answer (an HTML page, an empty 401, a malformed token response), are held before a
correct answer, or get a correct answer (tokens really issued) whose JSON is altered.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from starlette.responses import Response

from ._wire import NO_STORE, json_body

__all__ = ["ENDPOINTS", "Fault", "FaultInjection"]

ENDPOINTS = frozenset({"token", "revoke", "status"})
"""The endpoints behaviours can be injected into."""

_ERRORS = {429: "too_many_requests", 503: "temporarily_unavailable"}


@attrs.frozen
class Fault:
    """One injected behaviour of an endpoint, used by the next request to it."""

    kind: Literal["status", "timeout", "canned", "delay", "tamper"]
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    change: Callable[[dict[str, Any]], Any] | None = None


class FaultInjection:
    """The provider's ``fail_next``, ``respond_next``, ``delay_next`` and ``tamper_next``,
    and ``_inject``, which its endpoints ask for the next injected behaviour."""

    timeout_delay: float
    _lock: threading.Lock
    _faults: dict[str, deque[Fault]]
    _stopping: threading.Event

    def fail_next(self, endpoint: str, failure: int | str, count: int = 1) -> None:
        """Make the next `count` requests to `endpoint` fail, after any failures already queued.

        `endpoint` is ``"token"``, ``"revoke"`` or ``"status"``. `failure` is an
        HTTP error status (429 comes with ``Retry-After: 1``) or ``"timeout"``:
        the response (a 504) is held for `timeout_delay` seconds.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {endpoint!r}")
        if failure != "timeout" and not (isinstance(failure, int) and 400 <= failure <= 599):
            raise ValueError(f"failure must be an HTTP error status or 'timeout', not {failure!r}")
        fault = Fault("timeout") if isinstance(failure, str) else Fault("status", status=failure)
        self._queue(endpoint, fault, count)

    def respond_next(
        self,
        endpoint: str,
        status: int,
        body: str | bytes | object = b"",
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next `count` requests to `endpoint` with exactly this response.

        `body` is sent as is when it is ``str`` or ``bytes`` (default content
        type ``text/html``), and as JSON otherwise (``application/json``), so a
        test can send whatever a misbehaving provider or gateway would.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status, not {status!r}")
        if isinstance(body, bytes | str):
            raw = body.encode() if isinstance(body, str) else body
            kind = content_type or "text/html; charset=utf-8"
        else:
            raw = json.dumps(body).encode()
            kind = content_type or "application/json"
        all_headers = {**NO_STORE, "content-type": kind, **(headers or {})}
        self._queue(endpoint, Fault("canned", status=status, body=raw, headers=all_headers), count)

    def delay_next(self, endpoint: str, seconds: float, count: int = 1) -> None:
        """Hold the next `count` requests to `endpoint` for `seconds`, then answer them normally."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._queue(endpoint, Fault("delay", delay=seconds), count)

    def tamper_next(
        self, endpoint: str, change: Callable[[dict[str, Any]], Any], count: int = 1
    ) -> None:
        """Answer the next `count` requests normally, then replace the JSON body by `change(body)`.

        The provider's state changes as for a normal answer (a refresh token
        is really rotated), so a test sees what a client does with a correct
        grant wrapped in a malformed response.
        """
        self._queue(endpoint, Fault("tamper", change=change), count)

    def _queue(self, endpoint: str, fault: Fault, count: int) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, not {endpoint!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults[endpoint].extend([fault] * count)

    async def _inject(self, endpoint: str) -> Response | Fault | None:
        """The next injected behaviour: a response to send instead, a fault to apply, or None."""
        with self._lock:
            queue = self._faults[endpoint]
            fault = queue.popleft() if queue else None
            delay = self.timeout_delay
        if fault is None:
            return None
        if fault.kind in ("timeout", "delay"):
            deadline = time.monotonic() + (delay if fault.kind == "timeout" else fault.delay)
            while (remaining := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
                await asyncio.sleep(min(remaining, 0.05))
            if fault.kind == "delay":
                return None
            return json_body({"error": "temporarily_unavailable"}, 504)
        if fault.kind == "canned":
            return Response(fault.body, fault.status, dict(fault.headers))
        if fault.kind == "tamper":
            return fault
        status = fault.status
        error = _ERRORS.get(status, "server_error" if status >= 500 else "invalid_request")
        body = {"error": error, "error_description": "injected failure"}
        return json_body(body, status, {"Retry-After": "1"} if status == 429 else None)
