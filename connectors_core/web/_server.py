"""The standalone server behind ``connectors serve``: routes, page, and the sandbox.

On loopback it needs no set-up at all: the embedded SQLite store, a local key
file (development mode) and the single local tenant. Anywhere else it refuses
to start until an authenticator and encryption keys are configured.
``--demo`` adds a sandbox OAuth provider at ``/sandbox`` that stands in for
every OAuth connector without a configured client, so Connect works end to
end on a laptop.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._exceptions import ConfigurationError
from .._registry import Registry
from .._settings import Settings, env_prefix
from ..connections import Connections
from ..flows import flow_for
from ..store import open_store
from ._app import create_app
from ._security import Authenticator, is_loopback, local_tenant

__all__ = ["SANDBOX_PATH", "AccessLogFilter", "create_server", "public_url_for"]

SANDBOX_PATH = "/sandbox"


def public_url_for(host: str, port: int) -> str:
    """The origin a browser uses for a server bound to ``host:port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class AccessLogFilter(logging.Filter):
    """Drops query strings from uvicorn's access log: a callback's carries the code."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


class _CanonicalHost:
    """Sends browsers to the public origin, so cookies and redirect URIs agree."""

    def __init__(self, app: ASGIApp, origin: str) -> None:
        self.app = app
        self.origin = origin
        self.netloc = urlsplit(origin).netloc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host and host != self.netloc:
                query = scope.get("query_string", b"").decode("latin-1")
                target = self.origin + scope["path"] + (f"?{query}" if query else "")
                await RedirectResponse(target, status_code=307)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _sandbox(settings: Settings, registry: Registry) -> tuple[Settings, Any]:
    """Point every OAuth connector without a client at a local sandbox provider.

    With an SQLite file, the sandbox keeps its grants (their hashes) and its
    clients' secrets in ``<file>.sandbox.json`` beside it, so connections made
    before a restart still work after it. A plugin's ``sandbox_api`` app
    stands in for its connector's API.
    """
    from ..testing.contract import answer_verify_requests, mount_sandbox_apis
    from ..testing.oauth_provider import ALL_GRANTS, Account, Client, OAuthProvider, quirks_for

    base = settings.origin + SANDBOX_PATH
    database = settings.database_url
    state_path = None
    if database.startswith("sqlite:///") and database != "sqlite:///:memory:":
        state_path = database.removeprefix("sqlite:///") + ".sandbox.json"
    saved = OAuthProvider.saved_client_secrets(state_path) if state_path else {}
    environ = dict(settings.environ)
    clients = []
    for connector in registry:
        if not flow_for(connector).needs_client(connector) or connector.connection is None:
            continue
        if settings.client_credentials(connector.id) is not None:
            continue
        prefix = env_prefix(connector.id)
        client_id = f"sandbox-{connector.id}"
        secret = saved.get(client_id) or secrets.token_urlsafe(24)
        environ.update(
            {
                f"{prefix}CLIENT_ID": client_id,
                f"{prefix}CLIENT_SECRET": secret,
                f"{prefix}AUTHORIZE_URL": f"{base}/oauth/authorize",
                f"{prefix}TOKEN_URL": f"{base}/api/oauth/token",
                f"{prefix}REVOCATION_URL": f"{base}/api/oauth/revoke",
            }
        )
        redirect = (settings.redirect_uri(connector.id),)
        # The sandbox behaves as the connector's manifest says its provider does.
        quirks = quirks_for(connector)
        grants = tuple(
            g for g in ALL_GRANTS if quirks.client_auth != "none" or g != "client_credentials"
        )
        scopes = flow_for(connector).scopes(connector)
        clients.append(Client(client_id, secret, redirect, scopes, grants, quirks))
    if not clients:
        return settings, None
    provider = OAuthProvider(
        clients=clients,
        account=Account(user_id="sandbox-user", organization_id="sandbox-org"),
        interactive=True,
        state_path=state_path,
    )
    # The sandboxed connectors' APIs: a plugin's sandbox app, else the provider's canned
    # one, which answers a verify request with every value it reads.
    sandboxed = {client.client_id.removeprefix("sandbox-") for client in clients}
    answer_verify_requests(provider, registry)
    apps = set(mount_sandbox_apis(provider, registry))
    for connector_id in sandboxed:
        api = f"{base}/apis/{connector_id}" if connector_id in apps else f"{base}/connector-api"
        prefix = env_prefix(connector_id)
        environ.update({f"{prefix}API_BASE_URL": api, f"{prefix}VERIFY_BASE_URL": api})
    return attrs.evolve(settings, environ=environ), provider


async def _forget_sandbox_grants(connections: Connections, provider: Any) -> None:
    """A sandbox that starts afresh issued nothing: the connections it minted are dead.

    (Its grants live in ``<file>.sandbox.json``; when that is gone, or the
    store is not a file, every connection the sandbox made needs the user
    again rather than saying "Connected" over dead tokens. Connections made
    elsewhere, to the real provider, are not its to judge.)
    """
    sandboxed = {client_id.removeprefix("sandbox-") for client_id in provider.client_ids}
    minted = provider.account.organization_id
    for summary in await connections.list():
        if (
            summary.connector_id in sandboxed
            and summary.state.value == "connected"
            and summary.account.get("organizationId") == minted
        ):
            await connections.mark_needs_reauth(
                summary.tenant,
                summary.connector_id,
                "sandbox_reset",
                connection_id=summary.connection_id,
            )


def create_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    demo: bool = False,
    authenticator: Authenticator | None = None,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
) -> Starlette:
    """The app ``connectors serve`` runs.

    :raises ConfigurationError: when asked to listen beyond loopback without an
        authenticator and encryption keys, or to run the sandbox there.
    """
    env = dict(os.environ if environ is None else environ)
    loopback = is_loopback(host)
    if not loopback:
        missing = []
        if authenticator is None:
            missing.append("an authenticator (--authenticator module:function)")
        if not env.get("CONNECTORS_SECRET_KEYS"):
            missing.append("encryption keys (CONNECTORS_SECRET_KEYS; `connectors keygen`)")
        if missing:
            raise ConfigurationError(
                "--host",
                f"refusing to listen on {host}, beyond this machine, without "
                + " and ".join(missing),
            )
        if demo:
            raise ConfigurationError("--demo", "the sandbox provider is for loopback only")
    public = env.get("CONNECTORS_PUBLIC_URL") or public_url_for(host, port)
    settings = Settings.from_env(
        env, public_url=public, dev_mode=loopback and not env.get("CONNECTORS_SECRET_KEYS")
    )
    if registry is None:
        from .._discovery import discover

        registry = discover()
    provider = None
    if demo:
        settings, provider = _sandbox(settings, registry)
    store = open_store(settings)
    connections = Connections(registry, store, settings)
    integrations = create_app(
        connections=connections, authenticator=authenticator or local_tenant, demo=demo
    )

    async def home(request: Request) -> Response:
        return RedirectResponse("/integrations", status_code=307)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if provider is not None and not provider.restored:
            await _forget_sandbox_grants(connections, provider)
        # A mounted app's lifespan is not run by its parent: this one delivers the
        # events, renews tokens (CONNECTORS_REFRESH_INTERVAL) and closes the store.
        async with integrations.router.lifespan_context(integrations):
            yield

    routes: list[Any] = [Route("/", home, methods=["GET"])]
    if provider is not None:
        routes.append(Mount(SANDBOX_PATH, app=provider.app))
    routes.append(Mount("/", app=integrations))
    server = Starlette(routes=routes, lifespan=lifespan)
    server.add_middleware(_CanonicalHost, origin=settings.origin)
    server.state.connections = connections
    server.state.settings = settings
    server.state.sandbox = provider
    return server
