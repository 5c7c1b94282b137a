"""The error of the Evencio plugin.

::

    Exception
     └── EvencioError    Evencio answered with an error, an answer the client cannot
                         read, or not at all

connectors-core's own errors (``NotConnectedError``, ``NeedsReauthError``,
``HostNotAllowedError``, ...) are not wrapped: they mean the same for every
connector, and a job handles them the same way for all of them.
"""

from __future__ import annotations

__all__ = ["EvencioError"]


class EvencioError(Exception):
    """Evencio answered a request with an error, with an unreadable answer, or not at all.

    The message names the request (method and path, never the query) and
    what was wrong; it never quotes a credential, nor a value of the answer.

    :ivar status: the HTTP status of Evencio's answer (``403``, ``404``, ...;
        the success status, ``200``, of an answer that is not of the documented
        shape), or None when no answer came (``error`` is then ``unreachable``).
    :ivar error: what went wrong, as a code: Evencio's own (``insufficient_scope``,
        ``not_found``, ``rate_limited``, ...), or ``malformed_answer`` for an
        answer that is not of the documented shape, ``unreachable`` for no
        answer, ``http_error`` for an error answer without a code.
    :ivar path: the API path requested, such as ``/v1/events/evt_001``.
    :ivar scope: the scope Evencio says is missing, for ``insufficient_scope``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        error: str,
        path: str,
        scope: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.path = path
        self.scope = scope
