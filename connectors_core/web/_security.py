"""Who is asking, and did they mean to: tenants, browser sessions, CSRF.

* **Tenants** come from an *authenticator*, a callable the host application
  provides: ``request -> tenant id | Identity | None`` (it may be async). An
  :class:`Identity` names the user too (recorded as who connected, and the
  actor of events) and their roles. The built-in :func:`local_tenant` serves a
  single local tenant and only when the server listens on loopback and the
  request comes from loopback.
* **Permissions** come from an optional *authorizer*:
  ``(request, action, connector, connection) -> bool`` (it may be async), asked
  before each action (:class:`Action`) and by the page to hide what the user
  may not do. Without one, whoever the authenticator accepts may do anything.
  :func:`by_role` builds one from a role-to-actions table.
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
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

import attrs
from starlette.requests import Request
from starlette.responses import Response

from .._events import Actor

if TYPE_CHECKING:
    from .._manifest import Connector
    from ..store import ConnectionSummary

__all__ = [
    "LOCAL_TENANT",
    "SESSION_COOKIE",
    "Action",
    "Authenticator",
    "Authorizer",
    "CsrfGuard",
    "Identity",
    "by_role",
    "identity_of",
    "is_loopback",
    "local_tenant",
    "resolve_identity",
    "resolve_tenant",
]


def _roles(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):  # one role, not its letters
        return frozenset((value,))
    return frozenset(value)


@attrs.frozen
class Identity:
    """Who is asking: their tenant and, if the host knows, the user and their roles.

    An authenticator returns one (or just the tenant id, a ``str``). The user
    is recorded as who connected a connection and as the actor of its
    events; an authorizer reads the roles.
    """

    tenant: str
    """The tenant (organization, workspace) whose connections the request sees."""

    user: str | None = None
    """The user's id in the host application."""

    name: str | None = None
    """The user's display name ("connected by Ada Lovelace")."""

    roles: frozenset[str] = attrs.field(default=frozenset(), converter=_roles)
    """The user's roles in that tenant, for an authorizer (e.g. ``{"admin"}``)."""

    @property
    def actor(self) -> Actor | None:
        """The user as an event's actor, if the authenticator named one."""
        return Actor(self.user, self.name) if self.user else None


class Action(StrEnum):
    """What a user asks to do, as an authorizer sees it."""

    VIEW = "view"
    """See a connector and its connections (the page's card, the status routes)."""

    CONNECT = "connect"
    """Connect an account, or connect one again."""

    DISCONNECT = "disconnect"
    """Disconnect a connection (and revoke its credentials)."""

    TEST = "test"
    """Check that a connection's credentials still work."""

    MANAGE = "manage"
    """Administer: rename connections, see plugins that failed to load."""


Authenticator = Callable[[Request], "str | Identity | Awaitable[str | Identity | None] | None"]
"""Resolves who is asking: a tenant id, an :class:`Identity`, or None (not authenticated)."""

Authorizer = Callable[
    [Request, Action, "Connector | None", "ConnectionSummary | None"],
    "bool | Awaitable[bool]",
]
"""Decides whether the request's user may do an action.

Called as ``authorizer(request, action, connector, connection)``: the
connector (None for the page as a whole, e.g. ``manage`` to see plugin
failures) and the connection concerned (None when the action concerns none
yet, or the connector as a whole). :func:`identity_of` gives the request's
:class:`Identity`. Anything but ``True`` refuses.
"""

log = logging.getLogger("connectors_core.web")

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


async def resolve_identity(authenticator: Authenticator, request: Request) -> Identity | None:
    """Run the authenticator (sync or async); keep its answer as ``request.state.identity``."""
    found = authenticator(request)
    if inspect.isawaitable(found):
        found = await found
    identity: Identity | None = None
    if isinstance(found, str) and found:
        identity = Identity(found)
    elif isinstance(found, Identity) and found.tenant:
        identity = found
    request.state.identity = identity
    return identity


async def resolve_tenant(authenticator: Authenticator, request: Request) -> str | None:
    """The tenant the authenticator resolves (sync or async), or None."""
    identity = await resolve_identity(authenticator, request)
    return identity.tenant if identity else None


def identity_of(request: Request) -> Identity | None:
    """The :class:`Identity` the authenticator resolved for ``request`` (None before)."""
    identity = getattr(request.state, "identity", None)
    return identity if isinstance(identity, Identity) else None


def by_role(
    permissions: Mapping[str, Iterable[Action | str]], *, default: Iterable[Action | str] = ()
) -> Authorizer:
    """An authorizer from a table of what each role may do.

    A user may do what any of their roles (:attr:`Identity.roles`) allows;
    a user without a listed role, what ``default`` allows::

        authorizer = by_role(
            {"admin": list(Action), "member": [Action.VIEW, Action.TEST]}
        )

    :raises ValueError: for an action that is not one of :class:`Action`.
    """
    table = {role: frozenset(Action(a) for a in actions) for role, actions in permissions.items()}
    fallback = frozenset(Action(a) for a in default)

    def authorize(
        request: Request,
        action: Action,
        connector: Connector | None,
        connection: ConnectionSummary | None,
    ) -> bool:
        identity = identity_of(request)
        if identity is None:
            return False
        allowed = [table[role] for role in identity.roles if role in table]
        return any(action in actions for actions in allowed or [fallback])

    return authorize


async def is_allowed(
    authorizer: Authorizer | None,
    request: Request,
    action: Action,
    connector: Connector | None,
    connection: ConnectionSummary | None = None,
) -> bool:
    """Ask the authorizer (sync or async); without one, everything is allowed."""
    if authorizer is None:
        return True
    try:
        answer = authorizer(request, action, connector, connection)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception:  # the host's bug refuses (fails closed), it does not fail the request
        log.exception("the authorizer raised for %s; refusing", action.value)
        return False
    return answer is True


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
