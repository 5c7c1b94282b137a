"""The sandbox: a local OAuth provider standing in for every OAuth connector without a client.

:class:`Sandbox` registers one client per such connector with a strict
:class:`~connectors_core.sandbox.OAuthProvider` (interactive: a person
approves on its consent page), enforcing the quirks the connector's manifest
declares, and returns settings that point the connector at it: client id and
secret, authorize, token and revocation URLs, and its API (a plugin's
``sandbox_api`` app, else the provider's canned connector API). Connectors
with a configured client are left alone.

Only the consent page is for browsers (:attr:`Sandbox.browser_app`, mounted
by ``create_app(sandbox=True)`` at ``<mount point>/sandbox``); the server
reaches the token endpoint and the APIs in-process through
:meth:`Sandbox.transport`, so the sandbox works wherever the app runs, even
where the server cannot reach its own public URL.

The rule (:func:`check_allowed`): a sandbox hands out tokens that look real
and grant nothing, so it runs only where nobody mistakes it for production,
on a loopback public URL or in development mode (``CONNECTORS_DEV_MODE=1``).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import httpx2
from starlette.types import ASGIApp

from .._exceptions import ConfigurationError
from .._registry import Registry
from .._settings import Settings, env_prefix
from ..flows import flow_for
from ._apis import answer_verify_requests, mount_sandbox_apis
from ._provider import ALL_GRANTS, Account, Client, OAuthProvider, quirks_for

if TYPE_CHECKING:
    from ..connections import Connections

__all__ = [
    "SANDBOX_ACCOUNT",
    "SANDBOX_PATH",
    "Sandbox",
    "check_allowed",
    "is_loopback_url",
]

log = logging.getLogger("connectors_core.sandbox")

SANDBOX_PATH = "/sandbox"
"""Where the sandbox's consent page is served, below the app's mount point."""

SANDBOX_ACCOUNT = Account(user_id="sandbox-user", organization_id="sandbox-org")
"""The account behind every sandbox authorization."""

_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    import ipaddress

    host = urlsplit(url).hostname or ""
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_allowed(settings: Settings) -> None:
    """Refuse a sandbox where it could pass for production.

    Allowed when the public URL is on loopback (a developer's machine), or in
    development mode (``CONNECTORS_DEV_MODE=1``: a staging or preview
    server that says it is not production).

    :raises ConfigurationError: anywhere else.
    """
    if is_loopback_url(settings.public_url) or settings.dev_mode:
        return
    raise ConfigurationError(
        "sandbox",
        f"refusing to run the sandbox OAuth provider at {settings.origin}: it stands in "
        "for real providers with tokens that grant nothing, so it runs only on a loopback "
        "public URL or with CONNECTORS_DEV_MODE=1 (a development or staging server)",
    )


def _state_path(settings: Settings) -> str | None:
    """``<file>.sandbox.json`` beside an SQLite database file; None for any other store."""
    database = settings.database_url
    if database.startswith("sqlite:///") and database != "sqlite:///:memory:":
        return database.removeprefix("sqlite:///") + ".sandbox.json"
    return None


class Sandbox:
    """A sandbox OAuth provider for the OAuth connectors of ``registry`` that have no client.

    :param registry: the connectors.
    :param settings: the app's settings; :attr:`settings` are these, pointing
        each stood-in connector at the sandbox.
    :param state_path: where the provider keeps its grants (their hashes) and
        its clients' secrets, so that connections outlive a restart; default
        ``<file>.sandbox.json`` beside an SQLite database file, else in memory.
    :raises ConfigurationError: where the sandbox may not run (:func:`check_allowed`).
    """

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        *,
        state_path: str | os.PathLike[str] | None = None,
    ) -> None:
        check_allowed(settings)
        self.base_url = settings.base_url + SANDBOX_PATH
        """The sandbox's public URL: the app's, and ``/sandbox``."""
        path = os.fspath(state_path) if state_path is not None else _state_path(settings)
        saved = OAuthProvider.saved_client_secrets(path) if path else {}
        clients = []
        for connector in registry:
            if connector.connection is None or not flow_for(connector).needs_client(connector):
                continue
            if settings.client_credentials(connector.id) is not None:
                continue  # a real client: the real provider
            client_id = f"sandbox-{connector.id}"
            # The sandbox behaves as the connector's manifest says its provider does.
            quirks = quirks_for(connector)
            grants = tuple(
                g for g in ALL_GRANTS if quirks.client_auth != "none" or g != "client_credentials"
            )
            clients.append(
                Client(
                    client_id,
                    saved.get(client_id) or secrets.token_urlsafe(24),
                    (settings.redirect_uri(connector.id),),
                    flow_for(connector).scopes(connector),
                    grants,
                    quirks,
                )
            )
        self.connector_ids = frozenset(c.client_id.removeprefix("sandbox-") for c in clients)
        """The connectors the sandbox stands in for (none: it is idle)."""
        self.provider: OAuthProvider | None = None
        """The strict provider behind it (None when it stands in for no connector)."""
        self.settings = settings
        """The settings of the app, with each stood-in connector pointed at the sandbox."""
        if not clients:
            return
        provider = self.provider = OAuthProvider(
            clients=clients, account=SANDBOX_ACCOUNT, interactive=True, state_path=path
        )
        # The connectors' APIs: a plugin's sandbox app, else the provider's canned one,
        # which answers a verify request with every value it reads.
        answer_verify_requests(provider, registry)
        apis = set(mount_sandbox_apis(provider, registry))
        environ = dict(settings.environ)
        for client in clients:
            connector_id = client.client_id.removeprefix("sandbox-")
            api = (
                self.url("apis", path=f"/{connector_id}")
                if connector_id in apis
                else self.url("connector_api", path="").rstrip("/")
            )
            prefix = env_prefix(connector_id)
            environ.update(
                {
                    f"{prefix}CLIENT_ID": client.client_id,
                    f"{prefix}CLIENT_SECRET": client.client_secret,
                    f"{prefix}AUTHORIZE_URL": self.url("authorize"),
                    f"{prefix}TOKEN_URL": self.url("token"),
                    f"{prefix}REVOCATION_URL": self.url("revoke"),
                    f"{prefix}API_BASE_URL": api,
                    f"{prefix}VERIFY_BASE_URL": api,
                }
            )
        self.settings = attrs.evolve(settings, environ=environ)

    def url(self, name: str, /, **params: str) -> str:
        """The public URL of the provider's route ``name`` (``authorize``, ``token``,
        ``revoke``, ``status``), built from its route, under :attr:`base_url`."""
        if self.provider is None:
            raise LookupError("the sandbox stands in for no connector")
        return self.base_url + str(self.provider.app.router.url_path_for(name, **params))

    @property
    def active(self) -> bool:
        """Whether the sandbox stands in for at least one connector."""
        return self.provider is not None

    @property
    def browser_app(self) -> ASGIApp:
        """What browsers visit, to mount at ``<mount point>/sandbox``: the consent page."""
        if self.provider is None:
            raise LookupError("the sandbox stands in for no connector")
        return self.provider.browser_app

    def transport(
        self, inner: httpx2.AsyncBaseTransport | None = None
    ) -> httpx2.AsyncBaseTransport:
        """An httpx2 transport that answers requests to the sandbox in-process, and sends
        every other one through ``inner`` (default: a new HTTP transport per request)."""
        if self.provider is None:
            return inner or _PerRequest()
        return _SandboxTransport(self.base_url, self.provider.app, inner or _PerRequest())

    async def forget_lost_grants(self, connections: Connections) -> int:
        """Mark the connections this sandbox made as needing the user again when it
        starts afresh (its grants were not kept: no state file, or it is gone), rather
        than saying "Connected" over dead tokens. Connections to real providers are
        left alone. The number marked."""
        if self.provider is None or self.provider.restored:
            return 0
        marked = 0
        for summary in await connections.list():
            if (
                summary.connector_id in self.connector_ids
                and summary.state.value == "connected"
                and summary.account.get("organizationId") == SANDBOX_ACCOUNT.organization_id
            ):
                await connections.mark_needs_reauth(
                    summary.tenant,
                    summary.connector_id,
                    "sandbox_reset",
                    connection_id=summary.connection_id,
                )
                marked += 1
        return marked

    def describe(self) -> str:
        """One line for the log: what the sandbox stands in for, and where."""
        names = ", ".join(sorted(self.connector_ids)) or "no connector"
        return f"the sandbox OAuth provider at {self.base_url} stands in for {names}"


class _SandboxTransport(httpx2.AsyncBaseTransport):
    """Requests under the sandbox's URL go to its app in-process; others to ``inner``."""

    def __init__(self, base_url: str, app: ASGIApp, inner: httpx2.AsyncBaseTransport) -> None:
        base = httpx2.URL(base_url)
        self._scheme = base.scheme
        self._host = base.host
        self._port = base.port
        self._path = base.path.rstrip("/")
        self._local = httpx2.ASGITransport(
            app=app, root_path=self._path, raise_app_exceptions=False
        )
        self._inner = inner

    def _is_sandbox(self, url: httpx2.URL) -> bool:
        return (
            url.scheme == self._scheme
            and url.host == self._host
            and url.port == self._port
            and (url.path == self._path or url.path.startswith(self._path + "/"))
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._is_sandbox(request.url):
            return await self._local.handle_async_request(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        # Shared by every client the connections service opens and closes: nothing to
        # close here (``_PerRequest`` closes each of its transports with its response).
        return None


class _PerRequest(httpx2.AsyncBaseTransport):
    """A new HTTP transport for each request, closed with its response.

    What the connections service does without a transport (one per client),
    in a form that one shared transport can offer to every client at once.
    """

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        transport = httpx2.AsyncHTTPTransport()
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            await transport.aclose()
            raise
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Closing(response, transport),
            extensions=response.extensions,
        )


class _Closing(httpx2.AsyncByteStream):
    """A response's body, which closes its transport when it is closed."""

    def __init__(self, response: httpx2.Response, transport: httpx2.AsyncBaseTransport) -> None:
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        self._stream = response.stream
        self._transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            await self._transport.aclose()
