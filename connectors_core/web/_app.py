"""The integration routes, as a mountable Starlette application.

One declarative list of named routes (:data:`ROUTES`), served for every
connector that declares ``connection`` paths::

    GET  /api/integrations/{id}/connect      start connecting (OAuth redirect, or the API-key form)
    POST /api/integrations/{id}/connect      submit an API key (CSRF-protected)
    GET  /api/integrations/{id}/callback     the OAuth redirect URI
    GET  /api/integrations/{id}/status       {"connected": true, "status": {...}} or an error reason
    POST /api/integrations/{id}/disconnect   revoke and forget (CSRF-protected, idempotent)
    GET  /api/integrations/csrf              the CSRF token of this browser session
    GET  /api/integrations/openapi.json      the OpenAPI document of these routes

Errors are JSON ``{"error": "<reason>", "message": "..."}`` with a 4xx status
for anything the client sent (an unknown path or method under
``/api/integrations`` too); a secret never appears in a response.

A state-changing route checks CSRF before it parses anything: the Origin and
Sec-Fetch-Site headers before the body is read, an ``X-CSRF-Token`` header
before the body is parsed. Without the header, the token can only be the
``csrf_token`` field of a form body; a body that cannot be read or parsed then
ends in ``csrf_failed`` unless it carried a valid token. Bodies are exactly
what the OpenAPI document says: a form (``api_key``, ``csrf_token``) or a JSON
object of strings (``apiKey``), at most 8 KiB, or none at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import IntegrationError, UnknownConnectorError
from .._manifest import ApiKeyAuth, Connector, NoAuth, OAuth
from .._registry import Registry
from .._settings import Settings
from ..connections import Connections
from ..connections._plugins import import_in_background, plugin_hooks
from ..store import Store, open_store
from . import _openapi
from ._security import Authenticator, CsrfGuard, local_tenant, resolve_tenant

__all__ = ["ROUTES", "create_app"]

log = logging.getLogger("connectors_core.web")

MAX_BODY = 8 * 1024
MAX_FIELDS = 64
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Reason code -> HTTP status. Anything a client can cause is a 4xx.
STATUS = {
    "unknown_connector": 404,
    "not_connectable": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "unsupported_auth": 400,
    "unauthenticated": 401,
    "csrf_failed": 403,
    "not_configured": 409,
    "invalid_api_key": 422,
    "invalid_request": 400,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "provider_unavailable": 503,
    "plugin_unavailable": 503,
}


# The body fields of each state-changing route: form name -> JSON name. A form
# may carry csrf_token as well; nothing else is accepted.
SUBMIT_FIELDS = {"api_key": "apiKey"}
DISCONNECT_FIELDS: dict[str, str] = {}

_API = "/api/integrations"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def error(reason: str, message: str, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The JSON error response for ``reason``."""
    return JSONResponse(
        {"error": reason, "message": message},
        status_code=STATUS.get(reason, 400),
        headers=headers,
    )


def _rejected(reason: str, message: str) -> IntegrationError:
    return IntegrationError(message, reason=reason)


def _csrf_failed() -> IntegrationError:
    return _rejected("csrf_failed", "missing or invalid CSRF token, or a cross-site request")


def _shown(name: str) -> str:
    """A field name fit to quote back: plain names only, never arbitrary client text."""
    return repr(name) if _PLAIN_NAME.fullmatch(name) else "with an unusual name"


async def _read(request: Request) -> bytes:
    """The request body, at most :data:`MAX_BODY` bytes, whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _rejected("invalid_request", "Content-Length is not a number")
        if int(declared) > MAX_BODY:
            raise _rejected("payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:  # a chunked body, or one longer than it said
                raise _rejected("payload_too_large", f"the body may be at most {MAX_BODY} bytes")
    except ClientDisconnect:
        raise _rejected("invalid_request", "the body ended before its declared length") from None
    return bytes(body)


def _media_type(request: Request) -> str:
    """The body's media type, lower-cased ("" when none is declared); UTF-8 only."""
    value = request.headers.get("content-type", "")
    kind, _, parameters = value.partition(";")
    for parameter in parameters.split(";"):
        name, _, charset = parameter.partition("=")
        if name.strip().lower() == "charset" and charset.strip(' "').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise _rejected("unsupported_media_type", "the body must be UTF-8")
    return kind.strip().lower()


def _form_token(body: bytes) -> str | None:
    """The form's csrf_token when it has exactly one, read leniently (the check comes later)."""
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    tokens = {value for name, value in pairs if name == "csrf_token"}
    return tokens.pop() if len(tokens) == 1 else None


def _parse(request: Request, body: bytes, names: Mapping[str, str]) -> dict[str, str]:
    """The fields of a form or JSON body (by their form names), or a 4xx reason."""
    kind = _media_type(request)
    if kind not in (FORM, JSON, ""):
        raise _rejected("unsupported_media_type", f"send {FORM} or {JSON}")
    if not body:
        return {}
    if kind == "":
        raise _rejected("unsupported_media_type", f"a body needs a Content-Type: {FORM} or {JSON}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _rejected("invalid_request", "the body is not UTF-8") from None
    return _form_fields(text, names) if kind == FORM else _json_fields(text, names)


def _form_fields(text: str, names: Mapping[str, str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise _rejected("invalid_request", "a form value is not UTF-8") from None
    except ValueError:
        raise _rejected("invalid_request", f"a form may have at most {MAX_FIELDS} fields") from None
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise _rejected("invalid_request", f"the field {_shown(name)} is sent more than once")
        seen.add(name)
        if name != "csrf_token":
            if name not in names:
                raise _rejected("invalid_request", _unexpected(name, ["csrf_token", *names]))
            fields[name] = value
    return fields


def _json_fields(text: str, names: Mapping[str, str]) -> dict[str, str]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        for key in keys:
            if keys.count(key) > 1:
                raise _rejected(
                    "invalid_request", f"the field {_shown(key)} is sent more than once"
                )
        return dict(pairs)

    def constant(name: str) -> None:
        raise _rejected("invalid_request", f"{name} is not JSON")

    try:
        data = json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError:
        raise _rejected("invalid_request", "the JSON body is nested too deeply") from None
    except ValueError:
        raise _rejected("invalid_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _rejected("invalid_request", "the body must be a JSON object")
    by_json = {json_name: name for name, json_name in names.items()}
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key not in by_json:
            raise _rejected("invalid_request", _unexpected(key, list(by_json)))
        if not isinstance(value, str):
            raise _rejected("invalid_request", f"{key} must be a string")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, such as "\ud800"
            raise _rejected("invalid_request", f"{key} is not valid Unicode") from None
        fields[by_json[key]] = value
    return fields


def _unexpected(name: str, expected: list[str]) -> str:
    takes = ", ".join(expected) if expected else "no fields"
    return f"unexpected field {_shown(name)}; this route takes {takes}"


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (as Starlette's router matches it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class _Route(Route):
    """A route whose path has to match to its very end.

    Starlette anchors its path regex with ``$``, which also matches before a
    final newline: ``/api/integrations/evencio/status%0A`` would be answered
    as ``.../status``. ``\\Z`` matches only at the end.
    """

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, methods: list[str], name: str
    ) -> None:
        super().__init__(path, endpoint, methods=methods, name=name)
        pattern = self.path_regex.pattern
        if pattern.endswith("$"):
            self.path_regex = re.compile(pattern[:-1] + r"\Z", self.path_regex.flags)


class _App:
    """The endpoints, bound to one registry, store and configuration."""

    def __init__(
        self,
        registry: Registry,
        connections: Connections,
        settings: Settings,
        authenticator: Authenticator,
        guard: CsrfGuard,
    ) -> None:
        self.registry = registry
        self.connections = connections
        self.settings = settings
        self.authenticator = authenticator
        self.guard = guard
        self.routes: list[BaseRoute] = []

    # --- common steps ------------------------------------------------------------------

    async def _context(self, request: Request) -> tuple[Connector, str] | Response:
        """The connector (which must be connectable) and the tenant, or an error response."""
        connector_id = request.path_params["connector_id"]
        if connector_id not in self.registry:  # no "did you mean" over arbitrary client text
            return error("unknown_connector", f"no connector with id {connector_id[:64]!r}")
        try:
            connector = self.connections.connector(connector_id)
        except UnknownConnectorError:
            return error("unknown_connector", f"no connector with id {connector_id[:64]!r}")
        except IntegrationError as exc:
            return error(exc.reason, str(exc))
        tenant = await resolve_tenant(self.authenticator, request)
        if tenant is None:
            return error("unauthenticated", "sign in to manage integrations")
        return connector, tenant

    def _return(self, connector_id: str, **outcome: str) -> RedirectResponse:
        """Back to the fixed return path (never a target taken from the request)."""
        query = urlencode({"connector": connector_id, **outcome})
        return RedirectResponse(f"{self.settings.return_path}?{query}", status_code=303)

    async def _fields(self, request: Request, names: Mapping[str, str]) -> dict[str, str]:
        """The body fields of a state-changing request, after its CSRF check.

        :raises IntegrationError: ``csrf_failed`` first, then the body's reason.
        """
        # Origin, Sec-Fetch-Site and a session, before a byte of the body is read. (The
        # guard checks them with the token; given the session's own, only they count.)
        session_id = self.guard.session(request)
        if session_id is None or not self.guard.check(request, self.guard.token(session_id)):
            raise _csrf_failed()
        headers = request.headers.getlist("x-csrf-token")
        if headers:
            if len(headers) != 1 or not self.guard.check(request, headers[0]):
                raise _csrf_failed()
            return _parse(request, await _read(request), names)
        # Without the header, only a form body can carry the token.
        body: bytes | None = None
        token = None
        with contextlib.suppress(IntegrationError):
            body = await _read(request)
            if _media_type(request) == FORM:
                token = _form_token(body)
        if body is None or token is None or not self.guard.check(request, token):
            raise _csrf_failed()
        return _parse(request, body, names)

    @staticmethod
    def _wants_html(request: Request) -> bool:
        return "text/html" in request.headers.get("accept", "")

    # --- endpoints -----------------------------------------------------------------------

    async def csrf(self, request: Request) -> Response:
        session_id, new = self.guard.ensure_session(request)
        response = JSONResponse({"csrfToken": self.guard.token(session_id)})
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    async def connect(self, request: Request) -> Response:
        context = await self._context(request)
        if isinstance(context, Response):
            return context
        connector, tenant = context
        try:
            hook = await plugin_hooks(
                self.registry, connector.id, timeout=self.settings.plugin_load_timeout
            )
        except IntegrationError as exc:
            return error(exc.reason, str(exc))
        try:
            custom = hook.handle_connect(connector=connector, request=request, tenant=tenant)
            if isinstance(custom, Awaitable):
                custom = await custom
        except Exception as exc:  # noqa: BLE001 - a plugin's bug fails this request, not the server
            # The type only: the message of a plugin's exception may quote a secret.
            log.warning("handle_connect of %s raised %s", connector.id, type(exc).__name__)
            return error(
                "plugin_unavailable", f"the plugin of {connector.id!r} failed to start connecting"
            )
        if isinstance(custom, Response):
            return custom
        session_id, new = self.guard.ensure_session(request)
        if isinstance(connector.auth, OAuth):
            try:
                url = await self.connections.begin_oauth(tenant, connector.id, session_id)
            except IntegrationError as exc:
                return error(exc.reason, str(exc))
            response: Response = RedirectResponse(url, status_code=303)
        else:
            response = HTMLResponse(self._form(connector, self.guard.token(session_id)))
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    def _form(self, connector: Connector, csrf_token: str) -> str:
        """A minimal server-side form; the key is never rendered back."""
        name = html.escape(connector.name)
        action = f"/api/integrations/{html.escape(connector.id)}/connect"
        field = ""
        if isinstance(connector.auth, ApiKeyAuth):
            field = (
                f"<p>{html.escape(connector.auth.description)}</p>"
                '<label for="api_key">API key</label> '
                '<input id="api_key" name="api_key" type="password" autocomplete="off" '
                'required minlength="8" maxlength="512">'
            )
        return (
            f"<!doctype html><html lang=en><meta charset=utf-8><title>Connect {name}</title>"
            f'<h1>Connect {name}</h1><form method=post action="{action}">'
            f'<input type=hidden name=csrf_token value="{html.escape(csrf_token)}">{field} '
            "<button type=submit>Connect</button></form></html>"
        )

    async def _guarded(
        self, request: Request, names: Mapping[str, str]
    ) -> tuple[Connector, str, dict[str, str]] | Response:
        """For a state-changing route: connector, tenant and body fields, CSRF-checked."""
        context = await self._context(request)
        if isinstance(context, Response):
            return context
        try:
            fields = await self._fields(request, names)
        except IntegrationError as exc:
            return error(exc.reason, str(exc))
        return (*context, fields)

    async def submit(self, request: Request) -> Response:
        guarded = await self._guarded(request, SUBMIT_FIELDS)
        if isinstance(guarded, Response):
            return guarded
        connector, tenant, fields = guarded
        try:
            if isinstance(connector.auth, NoAuth):
                await self.connections.connect_none(tenant, connector.id)
            else:
                key = fields.get("api_key", "")
                await self.connections.connect_api_key(tenant, connector.id, key)
        except IntegrationError as exc:
            return error(exc.reason, str(exc))
        if self._wants_html(request):
            return self._return(connector.id, result="connected")
        return JSONResponse(await self.connections.status(tenant, connector.id))

    async def callback(self, request: Request) -> Response:
        context = await self._context(request)
        if isinstance(context, Response):
            return context
        connector, tenant = context
        params = {k: v[:2048] for k, v in request.query_params.items()}
        try:
            await self.connections.finish_oauth(
                connector.id, tenant, self.guard.session(request), params
            )
        except IntegrationError as exc:
            log.info("connect %s for tenant %s ended: %s", connector.id, tenant, exc.reason)
            return self._return(connector.id, error=exc.reason)
        return self._return(connector.id, result="connected")

    async def status(self, request: Request) -> Response:
        context = await self._context(request)
        if isinstance(context, Response):
            return context
        connector, tenant = context
        return JSONResponse(await self.connections.status(tenant, connector.id))

    async def disconnect(self, request: Request) -> Response:
        guarded = await self._guarded(request, DISCONNECT_FIELDS)
        if isinstance(guarded, Response):
            return guarded
        connector, tenant, _fields = guarded
        await self.connections.disconnect(tenant, connector.id)
        if self._wants_html(request):
            return self._return(connector.id, result="disconnected")
        return JSONResponse(await self.connections.status(tenant, connector.id))

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(_openapi.document(self.registry))

    # --- unknown paths and methods -----------------------------------------------------

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """JSON for a path or method the routes under ``/api/integrations`` don't serve."""
        assert isinstance(exc, HTTPException)
        path = _route_path(request.scope)
        if path != _API and not path.startswith(_API + "/"):
            if exc.status_code in (204, 304):
                return Response(status_code=exc.status_code, headers=exc.headers)
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 405:
            allowed = sorted(self._methods(request.scope))
            return error(
                "method_not_allowed",
                f"this route takes {', '.join(m for m in allowed if m != 'HEAD')}",
                headers={"Allow": ", ".join(allowed)},
            )
        if exc.status_code == 404:
            first = path[len(_API) + 1 :].split("/", 1)[0]
            if first and first not in ("csrf", "openapi.json") and first not in self.registry:
                return error("unknown_connector", f"no connector with id {first[:64]!r}")
            return error("not_found", "no such integration route")
        reason = "payload_too_large" if exc.status_code == 413 else "invalid_request"
        response = error(reason, exc.detail)
        response.status_code = exc.status_code if 400 <= exc.status_code < 500 else 400
        return response

    def _methods(self, scope: Scope) -> set[str]:
        """Every method some route serves at this path (one path may have several routes)."""
        methods: set[str] = set()
        for route in self.routes:
            if (
                isinstance(route, Route)
                and route.methods
                and route.matches(scope)[0] is not Match.NONE
            ):
                methods |= route.methods
        return methods


Endpoint = Callable[[_App], Callable[[Request], Awaitable[Response]]]

_ONE = "/api/integrations/{connector_id}"

ROUTES: list[tuple[str, str, str, Endpoint]] = [
    ("integrations:csrf", "GET", "/api/integrations/csrf", lambda a: a.csrf),
    ("integrations:openapi", "GET", "/api/integrations/openapi.json", lambda a: a.openapi),
    ("integrations:connect", "GET", f"{_ONE}/connect", lambda a: a.connect),
    ("integrations:submit", "POST", f"{_ONE}/connect", lambda a: a.submit),
    ("integrations:callback", "GET", f"{_ONE}/callback", lambda a: a.callback),
    ("integrations:status", "GET", f"{_ONE}/status", lambda a: a.status),
    ("integrations:disconnect", "POST", f"{_ONE}/disconnect", lambda a: a.disconnect),
]
"""(name, method, path, endpoint) of every route, in matching order."""


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


def create_app(
    registry: Registry | None = None,
    *,
    settings: Settings | None = None,
    store: Store | None = None,
    connections: Connections | None = None,
    authenticator: Authenticator | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    page: bool = True,
    demo: bool = False,
) -> Starlette:
    """The integration routes as an ASGI app, to serve or mount in a host application.

    :param registry: the connectors; default :func:`connectors_core.discover`.
    :param settings: default :meth:`Settings.from_env`.
    :param store: default the store ``settings.database_url`` names.
    :param connections: the :class:`Connections` to serve (then ``registry``,
        ``settings``, ``store`` and ``transport`` come from it); share it with
        the host's jobs, which call its ``get_access_token``.
    :param authenticator: resolves a request's tenant (``request -> str | None``,
        sync or async). Default: one local tenant, for loopback only.
    :param transport: an httpx2 transport for calls to providers (tests, proxies).
    :param page: serve the Integrations page at ``/integrations`` too.
    :param demo: label the page as a demo (connections go to a sandbox provider).
    :raises ConfigurationError: for a missing encryption key or a bad setting.
    """
    if connections is None:
        if registry is None:
            from .._discovery import discover

            registry = discover()
        settings = settings or Settings.from_env()
        connections = Connections(
            registry, store or open_store(settings), settings, transport=transport
        )
    registry, settings, store = connections.registry, connections.settings, connections.store
    secret = (
        hashlib.sha256(b"connectors-core csrf\0" + settings.secret_keys[0].encode()).digest()
        if settings.secret_keys
        else os.urandom(32)
    )
    guard = CsrfGuard(
        secret, origin=settings.origin, secure_cookies=settings.origin.startswith("https://")
    )
    app = _App(registry, connections, settings, authenticator or local_tenant, guard)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> Any:
        # Plugins taken from the discovery index are imported now, in a daemon thread,
        # so that first requests rarely wait; start-up and the event loop never do.
        import_in_background(registry)
        yield
        await store.close()

    routes: list[BaseRoute] = [
        _Route(path, endpoint(app), methods=[method], name=name)
        for name, method, path, endpoint in ROUTES
    ]
    if page:
        from ._page import STATIC, IntegrationsPage

        view = IntegrationsPage(registry, connections, app.authenticator, guard, demo=demo)
        routes += [
            _Route("/integrations", view.render, methods=["GET"], name="integrations:page"),
            Mount("/integrations/static", StaticFiles(directory=STATIC), name="static"),
        ]
    app.routes = routes
    starlette = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: app.http_error}
    )
    starlette.add_middleware(_SecurityHeaders)
    starlette.state.connections = connections
    starlette.state.registry = registry
    return starlette
