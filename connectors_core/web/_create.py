"""``create_app``: the integration routes assembled into a Starlette application.

It resolves the service (registry, settings, store, the sandbox), the CSRF
guard and the pages, builds the routes of :data:`~._app.ROUTES` (and the
Integrations page's, and the sandbox's consent page), and gives the app a
lifespan that imports the plugins in the background, renews tokens
(:func:`keep_alive`), delivers connection events and closes the store; every
response carries the headers of :class:`_SecurityHeaders`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import IntegrationError
from .._registry import Registry
from .._settings import Settings
from ..connections import Connections, Deliverer, Listener
from ..connections._plugins import import_in_background
from ..sandbox import SANDBOX_PATH, Sandbox, is_loopback_url
from ..store import Store
from ._app import ROUTES, _App, _Route
from ._forms import Pages
from ._i18n import LocaleOption
from ._sandboxing import connections_for, sandbox_option
from ._security import Authenticator, Authorizer, CsrfGuard, local_tenant
from ._urls import Urls

__all__ = ["create_app", "keep_alive"]

# Our own generator: jitter never touches (or depends on) the global random state.
_jitter = random.Random()

log = logging.getLogger("connectors_core.web")


class _SecurityHeaders:
    """Adds headers that keep responses out of caches and referrers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                    # same-origin: no Referer (with a callback's code) leaves the site,
                    # and the site's own form posts keep their Origin header.
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def keep_alive(connections: Connections, interval: float) -> None:
    """Renew what is due every ``interval`` seconds (``CONNECTORS_REFRESH_INTERVAL``), forever.

    Each run renews what expires before the next one; replicas doing the same
    renew each token once (the lease). A run that fails is logged and the
    next one comes all the same.
    """
    await anyio.sleep(interval * _jitter.random())  # replicas started together spread out
    while True:
        try:
            report = await connections.refresh_due(within=interval)
        except Exception:  # the loop outlives a failed run (a database restart)
            log.exception("renewing the connections that are due failed; trying again later")
        else:
            if report.outcomes:
                log.info(
                    "renewed %d connection(s); %d failed, %d need the user again",
                    report.count("refreshed"),
                    report.count("failed"),
                    report.count("needs_reauth"),
                )
        await anyio.sleep(interval)


def _loopback_only(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` for browsers on loopback only, unless in dev mode (the sandbox's consent
    page on a server whose public URL was left at its loopback default)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        host = Headers(scope=scope).get("host", "") if scope["type"] == "http" else ""
        if host and not settings.dev_mode and not is_loopback_url(f"http://{host}"):
            response = PlainTextResponse(
                "the sandbox is for local development only", status_code=403
            )
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


def create_app(
    registry: Registry | None = None,
    *,
    settings: Settings | None = None,
    store: Store | None = None,
    connections: Connections | None = None,
    authenticator: Authenticator | None = None,
    authorizer: Authorizer | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    page: bool = True,
    sandbox: bool | Sandbox = False,
    demo: bool | None = None,
    on_event: Listener | Sequence[Listener] | None = None,
    deliver_events: bool = True,
    login_url: str | None = None,
    templates: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = (),
    home: tuple[str, str] | None = None,
    locale: LocaleOption = None,
) -> Starlette:
    """The integration routes as an ASGI app, to serve or mount in a host application.

    :param registry: the connectors; default :func:`connectors_core.discover`.
    :param settings: default :meth:`Settings.from_env`.
    :param store: default the store ``settings.database_url`` names.
    :param connections: the :class:`Connections` to serve (then ``registry``,
        ``settings``, ``store`` and ``transport`` come from it); share it with
        the host's jobs, which call its ``get_access_token``.
    :param authenticator: resolves who asks (``request -> str | Identity | None``:
        the tenant, or an :class:`Identity` naming the user and their roles too; sync
        or async). Default: one local tenant, for loopback only.
    :param authorizer: decides what they may do (``(request, action, connector,
        connection) -> bool``, sync or async; see :func:`by_role`), asked before each
        action and by the page, which hides the rest. Default: everything.
    :param transport: an httpx2 transport for calls to providers (tests, proxies).
    :param page: serve the Integrations page at ``/integrations`` too.
    :param sandbox: serve a sandbox OAuth provider at ``<mount point>/sandbox`` and
        point every OAuth connector without a configured client at it (a
        :class:`~connectors_core.sandbox.Sandbox`: the one the given ``connections``
        were built with); every page and the JSON catalogue say so. Only on a
        loopback public URL or with ``CONNECTORS_DEV_MODE=1``; see ``docs/mounting.md``.
    :param demo: deprecated, the former name of ``sandbox``.
    :param on_event: a listener (or several) given each connection event, sync or
        async, at least once and in order per connection, off the request path.
    :param deliver_events: run the loop that delivers events (to ``on_event``, plugins'
        ``on_connection_event`` hooks and ``CONNECTORS_WEBHOOK_URL``); every replica
        may run it, each event reaching each destination once.
    :param login_url: the host's sign-in page: a signed-out browser is sent to
        ``<login_url>?next=<the path it asked for>`` (API clients get JSON 401).
        Default: a page saying to sign in.
    :param templates: the host's template folder(s), searched before the built-in
        templates (which stay reachable as ``connectors_core/<name>``); see
        ``docs/theming.md``.
    :param home: ``(label, url)`` of the host application, linked from every page.
    :param locale: the language of the pages (and of the JSON catalogue's manifests):
        None to follow each request's ``Accept-Language`` (English when none fits), a
        tag (``"fr"``) for every request, or a function ``request -> str | None`` (sync)
        giving a tag from the host's own user preference (None, or a language without
        a catalogue: ``Accept-Language`` decides). See ``docs/i18n.md``.
    :raises ConfigurationError: for a missing encryption key or a bad setting, or a
        sandbox where it may not run.
    :raises ValueError: for a template folder that is not a directory, or
        ``sandbox=True`` with ``connections`` (pass the ``Sandbox`` they were built with),
        or a ``locale`` tag without a catalogue.
    """
    connections, sandboxed = connections_for(
        sandbox_option(sandbox, demo),
        registry=registry,
        settings=settings,
        store=store,
        connections=connections,
        transport=transport,
    )
    registry, settings, store = connections.registry, connections.settings, connections.store
    # This app's listeners: the service's, and on_event (the service is left as it is).
    listeners = [*connections.listeners]
    if on_event is not None:
        listeners.extend([on_event] if callable(on_event) else on_event)
    secret = (
        hashlib.sha256(b"connectors-core csrf\0" + settings.secret_keys[0].encode()).digest()
        if settings.secret_keys
        else os.urandom(32)
    )
    guard = CsrfGuard(
        secret, origin=settings.origin, secure_cookies=settings.origin.startswith("https://")
    )
    urls = Urls(settings)
    folders = [templates] if isinstance(templates, (str, os.PathLike)) else list(templates)
    for folder in folders:
        if not os.path.isdir(folder):
            raise ValueError(f"the template folder {os.fspath(folder)!r} is not a directory")
    pages = Pages(urls, folders=folders, home=home, sandbox=sandboxed is not None, locale=locale)
    app = _App(
        registry,
        connections,
        settings,
        authenticator or local_tenant,
        guard,
        pages,
        authorizer=authorizer,
        login_url=login_url,
        sandbox=sandboxed,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        # Plugins taken from the discovery index are imported now, in a daemon thread,
        # so that first requests rarely wait; start-up and the event loop never do.
        import_in_background(registry)
        if sandboxed is not None:
            try:
                await sandboxed.forget_lost_grants(connections)
            except Exception:  # the database may be down yet: the page will say so
                log.exception("marking the connections of a reset sandbox failed")
        async with anyio.create_task_group() as group:
            if settings.refresh_interval:
                group.start_soon(keep_alive, connections, settings.refresh_interval)
            if deliver_events:
                deliverer = Deliverer(connections, listeners=listeners)
                try:
                    # Before the first request: its events are then for every destination.
                    await deliverer.register()
                except Exception:  # the database may be down yet: the loop registers later
                    log.exception("registering the event destinations failed; trying again")
                group.start_soon(deliverer.run)
            yield
            group.cancel_scope.cancel()
        await store.close()

    routes: list[BaseRoute] = [
        _Route(path, endpoint(app), methods=[method], name=name)
        for name, method, path, endpoint in ROUTES
    ]
    if page:
        from ._page import STATIC, IntegrationsPage

        view = IntegrationsPage(app)
        routes += [
            _Route("/integrations", view.render, methods=["GET"], name="integrations:page"),
            Mount(
                "/integrations/_static",
                StaticFiles(directory=STATIC),
                name="integrations:static",
            ),
            _Route(
                "/integrations/_icons/{connector_id}",
                view.icon,
                methods=["GET"],
                name="integrations:icon",
            ),
            _Route(
                "/integrations/{connector_id}",
                view.details,
                methods=["GET"],
                name="integrations:details",
            ),
        ]
    if sandboxed is not None:
        # Only the consent page: the server calls the rest in-process (Sandbox.transport).
        routes.append(
            Mount(
                SANDBOX_PATH,
                app=_loopback_only(sandboxed.browser_app, settings),
                name="integrations:sandbox",
            )
        )
    app.routes = routes
    urls.router.routes = routes
    starlette = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: app.http_error,
            IntegrationError: app.integration_error,
        },
    )
    starlette.add_middleware(_SecurityHeaders)
    starlette.state.connections = connections
    starlette.state.registry = registry
    starlette.state.sandbox = sandboxed
    return starlette
