"""The standalone server behind ``connectors serve``: routes, page, and the sandbox.

On loopback it needs no set-up at all: the embedded SQLite store, a local key
file (development mode) and the single local tenant. Anywhere else it refuses
to start until an authenticator and encryption keys are configured.
``--demo`` is ``create_app(sandbox=True)``: a sandbox OAuth provider at
``/sandbox`` stands in for every OAuth connector without a configured client,
so Connect works end to end on a laptop (:mod:`connectors_core.sandbox`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._exceptions import ConfigurationError
from .._registry import Registry
from .._settings import Settings
from ..connections import Connections
from ..sandbox import SANDBOX_PATH
from ._create import create_app
from ._security import Authenticator, is_loopback, local_tenant

__all__ = ["SANDBOX_PATH", "AccessLogFilter", "create_server", "public_url_for"]


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
    integrations = create_app(
        registry, settings=settings, authenticator=authenticator or local_tenant, sandbox=demo
    )
    connections: Connections = integrations.state.connections

    async def home(request: Request) -> Response:
        # Behind a proxy that strips the public URL's path, the page is under it.
        return RedirectResponse(settings.mount_path + "/integrations", status_code=307)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # A mounted app's lifespan is not run by its parent: this one delivers the
        # events, renews tokens (CONNECTORS_REFRESH_INTERVAL) and closes the store.
        async with integrations.router.lifespan_context(integrations):
            yield

    server = Starlette(
        routes=[Route("/", home, methods=["GET"]), Mount("/", app=integrations)],
        lifespan=lifespan,
    )
    server.add_middleware(_CanonicalHost, origin=settings.origin)
    server.state.connections = connections
    server.state.settings = connections.settings
    server.state.sandbox = integrations.state.sandbox
    return server
