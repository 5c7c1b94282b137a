"""Every answer a token endpoint can give, and what connectors-core makes of it.

A provider's token endpoint answers in more ways than RFC 6749 describes: an
HTML error page from a gateway, an empty 401, an OAuth error inside an HTTP
200, ``expires_in`` as a string or an object. :func:`classify` sorts any
answer into one :class:`Answer`, and :data:`OUTCOMES` says what each one means
for a code exchange and for a refresh. ``docs/connections.md`` lists the same
table; a test holds the two together.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import httpx2

__all__ = ["OUTCOMES", "Answer", "TokenAnswer", "classify", "lifetime", "unreachable"]

_TRANSIENT_CODES = frozenset({"temporarily_unavailable", "server_error"})
_CLIENT_CODES = frozenset({"invalid_client", "unauthorized_client"})
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class Answer(enum.StrEnum):
    """The kinds of answer a token endpoint gives, checked in this order."""

    UNREACHABLE = "unreachable"
    """No answer: a timeout, a refused connection, a TLS or protocol error."""

    OVERLOADED = "overloaded"
    """HTTP 5xx or 429, whatever the body says."""

    TRANSIENT_ERROR = "transient_error"
    """An OAuth error ``temporarily_unavailable`` or ``server_error``, at any status."""

    INVALID_GRANT = "invalid_grant"
    """The OAuth error ``invalid_grant``: the code or refresh token is not (or no longer) valid."""

    INVALID_CLIENT = "invalid_client"
    """``invalid_client`` or ``unauthorized_client``: the server's OAuth client is misconfigured."""

    UNAUTHORIZED = "unauthorized"
    """HTTP 401 or 403 with anything else: another error code, HTML, an empty body."""

    OTHER_ERROR = "other_error"
    """Any other OAuth error code (even in an HTTP 200), or any other non-2xx status."""

    UNREADABLE = "unreadable"
    """A 2xx whose body is neither a JSON object nor a form, or cannot be decoded."""

    NO_ACCESS_TOKEN = "no_access_token"
    """A 2xx object without a non-empty string ``access_token`` (a new refresh token is kept)."""

    TOKENS = "tokens"
    """A 2xx object with an access token; odd ``expires_in`` or ``scope`` values are tolerated."""


OUTCOMES: Mapping[Answer, tuple[str, str]] = {
    Answer.UNREACHABLE: ("provider_unavailable", "provider_unavailable"),
    Answer.OVERLOADED: ("provider_unavailable", "provider_unavailable"),
    Answer.TRANSIENT_ERROR: ("provider_unavailable", "provider_unavailable"),
    Answer.INVALID_GRANT: ("exchange_failed", "needs_reauth"),
    Answer.INVALID_CLIENT: ("not_configured", "not_configured"),
    Answer.UNAUTHORIZED: ("exchange_failed", "needs_reauth"),
    Answer.OTHER_ERROR: ("exchange_failed", "refresh_failed"),
    Answer.UNREADABLE: ("exchange_failed", "refresh_failed"),
    Answer.NO_ACCESS_TOKEN: ("exchange_failed", "refresh_failed"),
    Answer.TOKENS: ("connected", "refreshed"),
}
"""Answer -> (outcome of a code exchange, outcome of a refresh).

``connected`` and ``refreshed`` are successes; every other value is the
reason code of the error raised. Only ``needs_reauth`` changes the stored
connection's state: the other failures leave it connected.
"""


@attrs.frozen
class TokenAnswer:
    """One classified answer of a token endpoint."""

    kind: Answer
    status: int | None = None
    """The HTTP status, or None when nothing was received."""
    error: str | None = None
    """The provider's OAuth error code (sanitized), or what went wrong on the wire."""
    body: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """The parsed object (empty unless the body was a JSON object or a form)."""

    def describe(self) -> str:
        """What the provider answered, for messages and logs: never a body or a token."""
        if self.status is None:
            return f"no answer ({self.error or 'unreachable'})"
        code = f" ({self.error})" if self.error else ""
        return f"HTTP {self.status}{code}"


def unreachable(exc: httpx2.HTTPError) -> TokenAnswer:
    """The answer for an httpx2 error raised instead of a response."""
    if isinstance(exc, httpx2.TransportError):
        return TokenAnswer(Answer.UNREACHABLE, error=type(exc).__name__)
    # DecodingError, TooManyRedirects...: something came back, but not a readable answer.
    return TokenAnswer(Answer.UNREADABLE, error=type(exc).__name__)


def _parse(response: httpx2.Response) -> Mapping[str, Any] | None:
    """The body as a mapping: a JSON object, or a form (some providers still send one)."""
    content = response.content
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        return data
    kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if data is None and kind in ("application/x-www-form-urlencoded", "text/plain"):
        try:
            pairs = parse_qsl(content.decode(), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return None
        return dict(pairs) if pairs else None
    return None


def _code(value: object) -> str | None:
    """The OAuth error code, only if it is a plausible one (never echo arbitrary text)."""
    if isinstance(value, str) and _CODE.fullmatch(value):
        return value
    return "invalid_error_code" if value not in (None, "") else None


Shape = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Maps a provider's own token response onto the standard fields (see :func:`standard`)."""


def classify(response: httpx2.Response, shape: Shape | None = None) -> TokenAnswer:
    """Sort a token endpoint's HTTP response into one :class:`Answer`.

    :param shape: applied to a successful answer's body first, for providers
        that keep the token elsewhere (``authed_user.access_token``).
    """
    status = response.status_code
    if status >= 500 or status == 429:
        return TokenAnswer(Answer.OVERLOADED, status)
    body = _parse(response)
    error = _code(body.get("error")) if body is not None else None
    if error is not None:
        assert body is not None
        if error in _TRANSIENT_CODES:
            kind = Answer.TRANSIENT_ERROR
        elif error == "invalid_grant":
            kind = Answer.INVALID_GRANT
        elif error in _CLIENT_CODES:
            kind = Answer.INVALID_CLIENT
        elif status in (401, 403):
            kind = Answer.UNAUTHORIZED
        else:
            kind = Answer.OTHER_ERROR
        return TokenAnswer(kind, status, error, body)
    if status in (401, 403):
        return TokenAnswer(Answer.UNAUTHORIZED, status, body=body or {})
    if not 200 <= status < 300:
        return TokenAnswer(Answer.OTHER_ERROR, status, body=body or {})
    if body is None:
        return TokenAnswer(Answer.UNREADABLE, status)
    if shape is not None:
        body = shape(body)
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        return TokenAnswer(Answer.NO_ACCESS_TOKEN, status, body=body)
    return TokenAnswer(Answer.TOKENS, status, body=body)


def dig(body: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a JSON object, or None."""
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def standard(
    access_token_path: str,
    refresh_token_path: str,
    expires_in_path: str,
    milliseconds: bool,
) -> Shape:
    """A :data:`Shape` reading the token, refresh token and lifetime from these paths."""

    def shape(body: Mapping[str, Any]) -> Mapping[str, Any]:
        result = dict(body)
        for key, path in (
            ("access_token", access_token_path),
            ("refresh_token", refresh_token_path),
            ("expires_in", expires_in_path),
        ):
            if path != key or key not in result:
                result[key] = dig(body, path)
        seconds = lifetime(result.get("expires_in"))
        if milliseconds and seconds is not None:
            result["expires_in"] = seconds / 1000
        return result

    return shape


def lifetime(value: object) -> float | None:
    """Seconds from an ``expires_in``-like value: a positive finite number or numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None
