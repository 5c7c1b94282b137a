"""The integration routes: what each one does (:func:`._create.create_app` serves them).

One declarative list of named routes (:data:`ROUTES`), served for every
connector that declares ``connection`` paths::

    GET  /api/integrations/{id}/connect      start: a redirect to the provider, or the connect form
    POST /api/integrations/{id}/connect      submit the form's values (CSRF-protected)
    GET  /api/integrations/{id}/callback     the OAuth redirect URI
    GET  /api/integrations/{id}/status       {"connected": true, "status": {...}} or an error reason
    GET  /api/integrations/{id}/disconnect   the page asking "disconnect?" (its form posts)
    POST /api/integrations/{id}/disconnect   revoke and forget (CSRF-protected, idempotent)
    POST /api/integrations/{id}/test         verify the stored credentials (CSRF-protected)
    GET  /api/integrations                   the catalogue as JSON (:mod:`._catalogue`)
    GET  /api/integrations/csrf              the CSRF token of this browser session
    GET  /api/integrations/openapi.json      the OpenAPI document of these routes

and the same for one connection, under
``/api/integrations/{id}/connections/{connection_id}/``: ``connect`` (GET and
POST: connect that connection again; its account may not change), ``status``,
``disconnect`` (GET and POST), ``test``, and ``rename`` (POST ``label``). The
routes without a connection id mean "the only connection" (a connector with
``connection.multiple`` answers their status with every connection, and
``connection_required`` for the others when it holds several); their connect
adds a connection, or updates the one of the same account.

Who asks is the authenticator's (a tenant, or an :class:`Identity` naming
the user, who is recorded as the actor); what they may do, the optional
authorizer's, asked before each action with the connection concerned: a
refusal is ``403 {"error": "forbidden"}``.

What each step does is the connector's flow (:mod:`connectors_core.flows`);
the endpoints resolve the connector and the tenant once, read the body, and
ask it. Endpoints raise :class:`IntegrationError`; one exception handler
answers every route: JSON ``{"error": "<reason>", "message": "..."}`` (with
``fields`` for invalid values) and the reason's status for API clients, and
for a browser that navigated to connect, submit, callback or disconnect, the
Integrations page again with the reason's message (or the form again, each
message beside its input). Unknown paths and methods under
``/api/integrations`` are JSON 404 / 405; a secret never appears in a response.

A state-changing route checks CSRF before it parses anything: the Origin and
Sec-Fetch-Site headers before the body is read, an ``X-CSRF-Token`` header
before the body is parsed. Without the header, the token can only be the
``csrf_token`` field of a form body; a body that cannot be read or parsed then
ends in ``csrf_failed`` unless it carried a valid token. Bodies are exactly
what the OpenAPI document says: a form or a JSON object of strings with the
connector's inputs, at most 8 KiB, or none at all.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from .._exceptions import (
    ConnectionRequiredError,
    IntegrationError,
    InvalidFieldsError,
    UnknownConnectorError,
)
from .._manifest import Connector
from .._reasons import Reason
from .._registry import Registry
from .._settings import Settings, env_prefix
from ..connections import Connections
from ..connections._plugins import plugin_hooks
from ..flows import ConnectStep, Redirect, ReplaceCheck, flow_for
from ..sandbox import Sandbox, is_loopback_url
from ..store import ConnectionSummary
from . import _openapi
from ._body import FORM, csrf_failed, form_token, media_type, parse, read_body
from ._catalogue import Catalogue
from ._forms import Forms, Pages
from ._security import (
    Action,
    Authenticator,
    Authorizer,
    CsrfGuard,
    Identity,
    is_allowed,
    resolve_identity,
)
from ._urls import full_path, mount_point

__all__ = ["ROUTES"]

log = logging.getLogger("connectors_core.web")

_API = "/api/integrations"

# Routes a browser navigates to: their failures send it back to the page.
_NAVIGATIONS = {
    "integrations:connect",
    "integrations:submit",
    "integrations:callback",
    "integrations:confirm-disconnect",
    "integrations:disconnect",
    "integrations:test",
    "integrations:connection-connect",
    "integrations:connection-submit",
    "integrations:connection-confirm-disconnect",
    "integrations:connection-disconnect",
    "integrations:connection-test",
    "integrations:connection-rename",
}


def error(
    reason: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error response for ``reason`` (with per-input messages, if any)."""
    body: dict[str, Any] = {"error": reason, "message": message}
    if fields:
        body["fields"] = dict(fields)
    return JSONResponse(body, status_code=Reason.of(reason).status, headers=headers)


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (as Starlette's router matches it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _wants_html(request: Request) -> bool:
    """A browser navigating or posting a form (it accepts HTML), not an API client."""
    return "text/html" in request.headers.get("accept", "")


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
    """The endpoints, bound to one registry, store and configuration.

    Endpoints raise :class:`IntegrationError`; :meth:`integration_error`, the
    app's exception handler, answers it once for every route.
    """

    def __init__(
        self,
        registry: Registry,
        connections: Connections,
        settings: Settings,
        authenticator: Authenticator,
        guard: CsrfGuard,
        pages: Pages,
        *,
        authorizer: Authorizer | None = None,
        login_url: str | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.registry = registry
        self.sandbox = sandbox
        self.connections = connections
        self.settings = settings
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.guard = guard
        self.pages = pages
        self.urls = pages.urls
        self.forms = Forms(pages)
        self.login_url = login_url
        self.routes: list[BaseRoute] = []

    # --- common steps ------------------------------------------------------------------

    async def _context(self, request: Request) -> tuple[Connector, Identity]:
        """The connector (which must be connectable) and who asks, resolved once.

        :raises IntegrationError: ``unknown_connector``, ``not_connectable`` or
            ``unauthenticated``.
        """
        connector_id = request.path_params["connector_id"]
        if connector_id not in self.registry:  # no "did you mean" over arbitrary client text
            raise IntegrationError(
                f"no connector with id {connector_id[:64]!r}", reason="unknown_connector"
            )
        try:
            connector = self.connections.connector(connector_id)
        except UnknownConnectorError:
            raise IntegrationError(
                f"no connector with id {connector_id[:64]!r}", reason="unknown_connector"
            ) from None
        request.state.connector = connector
        identity = await resolve_identity(self.authenticator, request)
        if identity is None:
            raise IntegrationError(
                "sign in to manage integrations",
                reason="unauthenticated",
                connector_id=connector.id,
            )
        return connector, identity

    async def _named(
        self, request: Request, connector: Connector, tenant: str, *, required: bool = True
    ) -> ConnectionSummary | None:
        """The connection a ``/connections/<connection_id>/...`` route names.

        None on the connector's own routes, and for a connection that is gone
        when ``required`` is false (an idempotent disconnect).

        :raises IntegrationError: ``unknown_connection``.
        """
        connection_id: str | None = request.path_params.get("connection_id")
        if connection_id is None:
            return None
        found = None
        if _CONNECTION_ID.fullmatch(connection_id):
            found = await self.connections.store.summary(tenant, connector.id, connection_id)
        if found is None and required:
            raise IntegrationError(
                f"{connector.id} has no connection {connection_id[:64]!r}",
                reason="unknown_connection",
                connector_id=connector.id,
            )
        return found

    async def _replaced(
        self, connector: Connector, tenant: str, named: ConnectionSummary | None
    ) -> ConnectionSummary | None:
        """The connection a connect would replace, as far as is known before the provider
        answers: the one the route names, or a single-connection connector's only one."""
        if named is not None or _multiple(connector):
            return named
        return await self._only(connector, tenant)

    def _may_replace(self, request: Request, connector: Connector) -> ReplaceCheck | None:
        """The authorizer, asked for ``connect`` on a connection new credentials would
        replace (known only once the provider said whose they are)."""
        authorizer = self.authorizer
        if authorizer is None:
            return None

        async def check(connection: ConnectionSummary) -> bool:
            return await is_allowed(authorizer, request, Action.CONNECT, connector, connection)

        return check

    async def visible(
        self, request: Request, connector: Connector, tenant: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """A status listing several connections, without those the user may not view."""
        listed = status.get("connections")
        if self.authorizer is None or not isinstance(listed, list):
            return status
        held = {
            s.connection_id: s
            for s in await self.connections.store.list(tenant=tenant, connector_id=connector.id)
        }
        shown = [
            each
            for each in listed
            if await is_allowed(
                self.authorizer,
                request,
                Action.VIEW,
                connector,
                held.get(_connection_id(each) or ""),
            )
        ]
        result: dict[str, Any] = {"connected": any(each["connected"] for each in shown)}
        if not shown:
            result["error"] = "not_connected"
        result["connections"] = shown
        return result

    async def _only(self, connector: Connector, tenant: str) -> ConnectionSummary | None:
        """The connector's only connection, for an authorizer (None without one, or when
        the connector holds several: the action then fails with ``connection_required``)."""
        if self.authorizer is None:
            return None
        try:
            return await self.connections.store.summary(tenant, connector.id)
        except ConnectionRequiredError:
            return None

    async def _authorize(
        self,
        request: Request,
        action: Action,
        connector: Connector,
        connection: ConnectionSummary | None,
    ) -> None:
        """Ask the authorizer.

        :raises IntegrationError: ``forbidden``.
        """
        if not await is_allowed(self.authorizer, request, action, connector, connection):
            raise IntegrationError(
                f"you may not {action.value} {connector.id}"
                + (f" connection {connection.connection_id}" if connection else ""),
                reason="forbidden",
                connector_id=connector.id,
            )

    def _return(self, request: Request, connector_id: str, **outcome: str) -> RedirectResponse:
        """Back to the page (never to a target taken from the request)."""
        return RedirectResponse(
            self.urls.page(request.scope, connector=connector_id, **outcome), status_code=303
        )

    def url(self, request: Request, name: str, /, **params: Any) -> str:
        """The path of a route, where this app is mounted."""
        return self.urls.path(request.scope, name, **params)

    def _check_mount(self, request: Request, connector: Connector) -> None:
        """An OAuth flow's redirect URI must lead back to this app, and a sandboxed
        connector is connected from a developer's machine only.

        :raises IntegrationError: ``not_configured`` when ``CONNECTORS_PUBLIC_URL``
            names another mount point than the one the request came through, or when
            a browser beyond loopback would be sent to the sandbox outside dev mode
            (a public URL left at its loopback default on a deployed server).
        """
        if (
            self.sandbox is not None
            and connector.id in self.sandbox.connector_ids
            and not self.settings.dev_mode
            and not is_loopback_url(str(request.url))
        ):
            log.error(
                "refusing to send a browser at %s to the sandbox provider: the sandbox runs "
                "for loopback browsers only, or with CONNECTORS_DEV_MODE=1",
                request.url.hostname,
            )
            raise IntegrationError(
                f"{connector.id!r} is stood in for by the sandbox, which is for local "
                "development only",
                reason="not_configured",
                connector_id=connector.id,
            )
        root = str(request.scope.get("root_path", "")).rstrip("/")
        if root and root != self.settings.mount_path:
            log.error(
                "the integration routes are mounted at %s but CONNECTORS_PUBLIC_URL is %s: "
                "OAuth redirect URIs would not lead back to them; set it to %s%s",
                root,
                self.settings.public_url,
                self.settings.origin,
                root,
            )
            raise IntegrationError(
                f"{connector.id!r} cannot be connected: this server's public URL "
                f"({self.settings.base_url}) is not where the integration routes are mounted "
                f"({root}); set CONNECTORS_PUBLIC_URL to {self.settings.origin}{root}",
                reason="not_configured",
                connector_id=connector.id,
            )

    def sign_in(self, request: Request, connector: Connector | None) -> Response:
        """A signed-out browser: to the host's login (and back), else a page saying so."""
        if self.login_url is None:
            return self.forms.signed_out(request, connector)
        name = getattr(request.scope.get("route"), "name", None)
        # Back to a page a GET can show again (never a callback's code into a login URL).
        back = (
            full_path(request.scope, self.settings)
            if request.method == "GET" and name != "integrations:callback"
            else self.urls.page(request.scope)
        )
        return login_redirect(self.login_url, back)

    async def _fields(self, request: Request, names: Mapping[str, str]) -> dict[str, str]:
        """The body fields of a state-changing request, after its CSRF check.

        :raises IntegrationError: ``csrf_failed`` first, then the body's reason.
        """
        # Origin, Sec-Fetch-Site and a session, before a byte of the body is read. (The
        # guard checks them with the token; given the session's own, only they count.)
        session_id = self.guard.session(request)
        if session_id is None or not self.guard.check(request, self.guard.token(session_id)):
            raise csrf_failed()
        headers = request.headers.getlist("x-csrf-token")
        if headers:
            if len(headers) != 1 or not self.guard.check(request, headers[0]):
                raise csrf_failed()
            return parse(request, await read_body(request), names)
        # Without the header, only a form body can carry the token.
        body: bytes | None = None
        token = None
        with contextlib.suppress(IntegrationError):
            body = await read_body(request)
            if media_type(request) == FORM:
                token = form_token(body)
        if body is None or token is None or not self.guard.check(request, token):
            raise csrf_failed()
        return parse(request, body, names)

    def _form_page(
        self,
        request: Request,
        connector: Connector,
        *,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> Response:
        """The connect form of ``connector`` (with the session cookie if it is new): of a new
        connection, or of the one the route names."""
        session_id, new = self.guard.ensure_session(request)
        connection_id = request.path_params.get("connection_id")
        response = self.forms.connect_page(
            request,
            connector,
            action=(
                self.url(
                    request,
                    "integrations:connection-submit",
                    connector_id=connector.id,
                    connection_id=connection_id,
                )
                if connection_id is not None
                else self.url(request, "integrations:submit", connector_id=connector.id)
            ),
            again=connection_id is not None,
            csrf_token=self.guard.token(session_id),
            values=values or {},
            errors=errors or {},
            status_code=status_code,
        )
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    # --- errors ----------------------------------------------------------------------

    async def integration_error(self, request: Request, exc: Exception) -> Response:
        """Answer a failed request: JSON for API clients, the page again for browsers.

        A browser that navigated to a connect, submit, callback or disconnect
        route goes back to the Integrations page with the reason (or, for
        invalid values, sees the form again with each message beside its input);
        signed out, it gets a page saying so. API clients get JSON.
        """
        assert isinstance(exc, IntegrationError)
        name = getattr(request.scope.get("route"), "name", None)
        connector: Connector | None = getattr(request.state, "connector", None)
        fields = exc.fields if isinstance(exc, InvalidFieldsError) else None
        reason = Reason.of(exc.reason)
        callback = name == "integrations:callback" and connector is not None
        if callback and reason is not Reason.UNAUTHENTICATED:
            # The provider sent the browser here: whatever went wrong, back to the page.
            assert connector is not None
            log.info("connect %s ended: %s", connector.id, exc.reason)
            return self._return(request, connector.id, error=exc.reason)
        if name not in _NAVIGATIONS or not _wants_html(request):
            return error(exc.reason, str(exc), fields=fields)
        if reason is Reason.UNAUTHENTICATED:
            return self.sign_in(request, connector)
        if connector is None:
            return RedirectResponse(
                self.urls.page(request.scope, error=exc.reason), status_code=303
            )
        if fields is not None and name in ("integrations:submit", "integrations:connection-submit"):
            return self._form_page(
                request,
                connector,
                values=getattr(request.state, "submitted", {}),
                errors=fields,
                status_code=reason.status,
            )
        return self._return(request, connector.id, error=exc.reason)

    # --- endpoints -----------------------------------------------------------------------

    async def csrf(self, request: Request) -> Response:
        session_id, new = self.guard.ensure_session(request)
        response = JSONResponse({"csrfToken": self.guard.token(session_id)})
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    async def connect(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        again = await self._named(request, connector, tenant)
        await self._authorize(
            request, Action.CONNECT, connector, await self._replaced(connector, tenant, again)
        )
        hook = await plugin_hooks(
            self.registry, connector.id, timeout=self.settings.plugin_load_timeout
        )
        try:
            custom = hook.handle_connect(connector=connector, request=request, tenant=tenant)
            if isinstance(custom, Awaitable):
                custom = await custom
        except Exception as exc:  # noqa: BLE001 - a plugin's bug fails this request, not the server
            # The type only: the message of a plugin's exception may quote a secret.
            log.warning("handle_connect of %s raised %s", connector.id, type(exc).__name__)
            raise IntegrationError(
                f"the plugin of {connector.id!r} failed to start connecting",
                reason="plugin_unavailable",
                connector_id=connector.id,
            ) from None
        if isinstance(custom, Response):
            return custom
        flow = flow_for(connector)
        if not flow.configured(connector, self.settings):
            # Not a form that dead-ends: say so before the user types anything.
            raise IntegrationError(
                f"{connector.id!r} is not set up on this server "
                f"(set {env_prefix(connector.id)}CLIENT_ID and _CLIENT_SECRET)",
                reason="not_configured",
                connector_id=connector.id,
            )
        if flow.connect_step(connector) is not ConnectStep.REDIRECT:
            return self._form_page(request, connector)
        self._check_mount(request, connector)
        session_id, new = self.guard.ensure_session(request)
        url = await self.connections.begin_oauth(
            tenant,
            connector.id,
            session_id,
            connection_id=again.connection_id if again else None,
        )
        response: Response = RedirectResponse(url, status_code=303)
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    async def submit(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        inputs = flow_for(connector).inputs(connector)
        fields = await self._fields(request, {i.name: i.json_name for i in inputs})
        again = await self._named(request, connector, tenant)
        await self._authorize(
            request, Action.CONNECT, connector, await self._replaced(connector, tenant, again)
        )
        if flow_for(connector).continues_at_provider(connector):
            self._check_mount(request, connector)
        # Kept for the form shown again on an error: non-secret values only.
        secret = {i.name for i in inputs if i.secret}
        request.state.submitted = {k: v for k, v in fields.items() if k not in secret}
        result = await self.connections.connect(
            tenant,
            connector.id,
            fields,
            session_id=self.guard.session(request),
            connection_id=again.connection_id if again else None,
            actor=identity.actor,
            may_replace=self._may_replace(request, connector),
        )
        if isinstance(result, Redirect):
            if _wants_html(request):
                return RedirectResponse(result.url, status_code=303)
            return JSONResponse({"connected": False, "redirect": result.url})
        if _wants_html(request):
            return self._return(request, connector.id, result="connected")
        return JSONResponse(
            await self.connections.status(tenant, connector.id, result.connection_id)
        )

    async def callback(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        await self._authorize(request, Action.CONNECT, connector, None)
        params = {k: v[:2048] for k, v in request.query_params.items()}
        await self.connections.finish_oauth(
            connector.id,
            identity.tenant,
            self.guard.session(request),
            params,
            actor=identity.actor,
            may_replace=self._may_replace(request, connector),
        )
        return self._return(request, connector.id, result="connected")

    async def status(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        named = await self._named(request, connector, tenant)
        connection = named or await self._only(connector, tenant)
        await self._authorize(request, Action.VIEW, connector, connection)
        connection_id = named.connection_id if named else None
        status = await self.connections.status(tenant, connector.id, connection_id)
        return JSONResponse(await self.visible(request, connector, tenant, status))

    async def confirm_disconnect(self, request: Request) -> Response:
        """The page asking "disconnect?", whose form posts to the disconnect route."""
        connector, identity = await self._context(request)
        tenant = identity.tenant
        named = await self._named(request, connector, tenant)
        connection = named or await self.connections.store.summary(tenant, connector.id)
        await self._authorize(request, Action.DISCONNECT, connector, connection)
        if connection is None:
            return self._return(request, connector.id, error="not_connected")
        status = await self.connections.status(tenant, connector.id, connection.connection_id)
        session_id, new = self.guard.ensure_session(request)
        response = self.forms.confirm_disconnect_page(
            request,
            connector,
            status,
            action=(
                self.url(
                    request,
                    "integrations:connection-disconnect",
                    connector_id=connector.id,
                    connection_id=named.connection_id,
                )
                if named
                else self.url(request, "integrations:disconnect", connector_id=connector.id)
            ),
            csrf_token=self.guard.token(session_id),
        )
        if new:
            self.guard.set_cookie(response, session_id)
        return response

    async def disconnect(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        await self._fields(request, {})
        named = await self._named(request, connector, tenant, required=False)
        connection_id = request.path_params.get("connection_id")
        # A route naming a connection that is gone concerns none (not the only other one).
        connection = named if connection_id is not None else await self._only(connector, tenant)
        await self._authorize(request, Action.DISCONNECT, connector, connection)
        if connection_id is None or named is not None:
            await self.connections.disconnect(
                tenant, connector.id, connection_id, actor=identity.actor
            )
        if _wants_html(request):
            return self._return(request, connector.id, result="disconnected")
        if connection_id is not None:
            return JSONResponse({"connected": False, "error": "not_connected"})
        return JSONResponse(await self.connections.status(tenant, connector.id))

    async def test(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        await self._fields(request, {})
        named = await self._named(request, connector, tenant)
        connection = named or await self._only(connector, tenant)
        await self._authorize(request, Action.TEST, connector, connection)
        status = await self.connections.verify(
            tenant,
            connector.id,
            named.connection_id if named else None,
            actor=identity.actor,
        )
        if _wants_html(request):
            return self._return(request, connector.id, result="verified")
        return JSONResponse(status)

    async def rename(self, request: Request) -> Response:
        connector, identity = await self._context(request)
        tenant = identity.tenant
        fields = await self._fields(request, {"label": "label"})
        named = await self._named(request, connector, tenant)
        assert named is not None  # the route names one
        await self._authorize(request, Action.MANAGE, connector, named)
        label = fields.get("label", "").strip() or None
        try:
            status = await self.connections.rename(tenant, connector.id, named.connection_id, label)
        except ValueError as exc:
            raise InvalidFieldsError(
                {"label": str(exc)}, reason="invalid_fields", connector_id=connector.id
            ) from None
        if _wants_html(request):
            return self._return(request, connector.id, result="renamed")
        return JSONResponse(status)

    async def openapi(self, request: Request) -> Response:
        document = _openapi.document(self.registry)
        # The paths are relative to where the routes are mounted.
        document["servers"] = [{"url": mount_point(request.scope, self.settings) or "/"}]
        return JSONResponse(document)

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
_EACH = _ONE + "/connections/{connection_id}"

# What a stored connection id can look like (``conn_`` and hex digits, or a host's own).
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def login_redirect(login_url: str, back: str) -> RedirectResponse:
    """To the host's login, ``next`` being the path to come back to (a path on this site)."""
    separator = "&" if "?" in login_url else "?"
    return RedirectResponse(f"{login_url}{separator}{urlencode({'next': back})}", status_code=303)


def _multiple(connector: Connector) -> bool:
    return connector.connection is not None and connector.connection.multiple


def _connection_id(status: Mapping[str, Any]) -> str | None:
    """The id of the connection a status JSON describes."""
    found = (status.get("status") or {}).get("connectionId") or status.get("connectionId")
    return str(found) if found else None


ROUTES: list[tuple[str, str, str, Endpoint]] = [
    # The status check first: the route most requests take (pages poll it), and no
    # other route matches its paths, so it is tried before the others.
    ("integrations:status", "GET", f"{_ONE}/status", lambda a: a.status),
    ("integrations:catalogue", "GET", "/api/integrations", lambda a: Catalogue(a).render),
    ("integrations:csrf", "GET", "/api/integrations/csrf", lambda a: a.csrf),
    ("integrations:openapi", "GET", "/api/integrations/openapi.json", lambda a: a.openapi),
    ("integrations:connect", "GET", f"{_ONE}/connect", lambda a: a.connect),
    ("integrations:submit", "POST", f"{_ONE}/connect", lambda a: a.submit),
    ("integrations:callback", "GET", f"{_ONE}/callback", lambda a: a.callback),
    (
        "integrations:confirm-disconnect",
        "GET",
        f"{_ONE}/disconnect",
        lambda a: a.confirm_disconnect,
    ),
    ("integrations:disconnect", "POST", f"{_ONE}/disconnect", lambda a: a.disconnect),
    ("integrations:test", "POST", f"{_ONE}/test", lambda a: a.test),
    ("integrations:connection-connect", "GET", f"{_EACH}/connect", lambda a: a.connect),
    ("integrations:connection-submit", "POST", f"{_EACH}/connect", lambda a: a.submit),
    ("integrations:connection-status", "GET", f"{_EACH}/status", lambda a: a.status),
    (
        "integrations:connection-confirm-disconnect",
        "GET",
        f"{_EACH}/disconnect",
        lambda a: a.confirm_disconnect,
    ),
    (
        "integrations:connection-disconnect",
        "POST",
        f"{_EACH}/disconnect",
        lambda a: a.disconnect,
    ),
    ("integrations:connection-test", "POST", f"{_EACH}/test", lambda a: a.test),
    ("integrations:connection-rename", "POST", f"{_EACH}/rename", lambda a: a.rename),
]
"""(name, method, path, endpoint) of every route, in matching order."""
