"""Who is asking, and did they mean to: tenants, browser sessions, CSRF.

* **Tenants** come from an *authenticator*, a callable the host application
  provides: ``request -> tenant id | None`` (it may be async). The built-in
  :func:`local_tenant` serves a single local tenant and only when the server
  listens on loopback and the request comes from loopback.
* **Browser sessions** are a random, HttpOnly, SameSite=Lax cookie. An OAuth
  state is bound to the session that started it.
* **CSRF**: state-changing requests must carry a token derived from the
  session (header ``X-CSRF-Token`` or form field ``csrf_token``) and must not
  come from another origin (``Origin`` / ``Sec-Fetch-Site``).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "LOCAL_TENANT",
    "SESSION_COOKIE",
    "Authenticator",
    "CsrfGuard",
    "is_loopback",
    "local_tenant",
    "resolve_tenant",
]

Authenticator = Callable[[Request], "str | Awaitable[str | None] | None"]
"""Resolves the tenant of a request; None means not authenticated."""

SESSION_COOKIE = "connectors_session"
LOCAL_TENANT = "local"


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_tenant(request: Request) -> str | None:
    """The single local tenant, for a server on loopback talking to loopback only."""
    server = request.scope.get("server")
    client = request.client
    if server and is_loopback(server[0]) and client is not None and is_loopback(client.host):
        return LOCAL_TENANT
    return None


async def resolve_tenant(authenticator: Authenticator, request: Request) -> str | None:
    """Run the authenticator (sync or async)."""
    tenant = authenticator(request)
    if inspect.isawaitable(tenant):
        tenant = await tenant
    return tenant if isinstance(tenant, str) and tenant else None


class CsrfGuard:
    """Issues session cookies and CSRF tokens, and checks state-changing requests."""

    def __init__(self, secret: bytes, *, origin: str, secure_cookies: bool) -> None:
        self._secret = secret
        self._origin = origin
        self._secure = secure_cookies

    def session(self, request: Request) -> str | None:
        """The browser session id, if the request carries a well-formed one."""
        value = request.cookies.get(SESSION_COOKIE)
        return value if value and 20 <= len(value) <= 100 and value.isascii() else None

    def ensure_session(self, request: Request) -> tuple[str, bool]:
        """The session id, and whether it is new (then :meth:`set_cookie` it)."""
        existing = self.session(request)
        return (existing, False) if existing else (secrets.token_urlsafe(32), True)

    def set_cookie(self, response: Response, session_id: str) -> None:
        """Attach the session cookie to ``response``."""
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            httponly=True,
            samesite="lax",
            secure=self._secure,
            path="/",
        )

    def token(self, session_id: str) -> str:
        """The CSRF token of a session."""
        digest = hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()
        return digest[:48]

    def check(self, request: Request, submitted: str | None) -> bool:
        """Whether a state-changing request is same-origin and carries the session's token."""
        if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return False
        origin = request.headers.get("origin")
        # "null" carries no information (a page with Referrer-Policy: no-referrer
        # sends it on its own forms); the session-bound token still has to match.
        if origin not in (None, "null") and origin not in self._allowed_origins(request):
            return False
        session_id = self.session(request)
        if session_id is None or not submitted:
            return False
        # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        return hmac.compare_digest(self.token(session_id).encode(), submitted.encode())

    def _allowed_origins(self, request: Request) -> set[str]:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return {self._origin, own}
